"""``{% visitor %}…{% endvisitor %}``: a part of a page that belongs to the visitor (see catalog.page_cache).

Rendered normally everywhere; while a catalog page is rendered for the shared cache it becomes a
marker, and each response renders the part for its own visitor (header, cart count, messages).
The node itself (``catalog.page_cache.VisitorNode``) lives with the cache that looks it up again.
"""
from django import template

from catalog.page_cache import VisitorNode

register = template.Library()


@register.tag("visitor")
def do_visitor(parser, token):
    nodelist = parser.parse(("endvisitor",))
    parser.delete_first_token()
    return VisitorNode(nodelist)
