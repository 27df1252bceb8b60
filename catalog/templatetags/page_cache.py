"""``{% visitor "part.html" %}``: a part of a page that belongs to the visitor (see catalog.page_cache).

Rendered in place everywhere; while a catalog page is rendered for the shared cache it becomes a
marker naming the template, and each response renders that template for its own visitor
(header links, cart count, messages).
"""

from django import template
from django.template import Engine
from django.utils.safestring import mark_safe

from catalog import page_cache

register = template.Library()


@register.simple_tag(takes_context=True)
def visitor(context, template_name: str):
    if page_cache.is_cacheable_render(context):
        return mark_safe(page_cache.visitor_marker(template_name))  # a fixed marker
    # In this page's context, as {% include %} renders (no second run of the context processors).
    return Engine.get_default().get_template(template_name).render(context)
