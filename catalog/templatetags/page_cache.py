"""``{% visitor %}…{% endvisitor %}``: a part of a page that belongs to the visitor (see catalog.page_cache).

Rendered normally everywhere; while a catalog page is rendered for the shared cache it becomes a
marker, and each response renders the part for its own visitor (header, cart count, messages).
"""
from django import template
from django.template.loader import get_template

from catalog import page_cache

register = template.Library()


class VisitorNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist
        self._index = None

    def index(self) -> int:
        """This part's place among the ``{% visitor %}`` parts of its template (the same on every server)."""
        if self._index is None:
            nodes = get_template(self.origin.template_name).template.nodelist.get_nodes_by_type(VisitorNode)
            same = [i for i, node in enumerate(nodes) if node is self]  # the cached loader's own copy
            self._index = same[0] if same else next(
                i for i, node in enumerate(nodes) if node.token.lineno == self.token.lineno
            )
        return self._index

    def render(self, context):
        if page_cache.is_cacheable_render(context):
            return page_cache.visitor_marker(self.origin.template_name, self.index())
        return self.nodelist.render(context)


@register.tag("visitor")
def do_visitor(parser, token):
    nodelist = parser.parse(("endvisitor",))
    parser.delete_first_token()
    return VisitorNode(nodelist)
