"""The Jinja2 environment of the page templates under ``templates/jinja2/`` (settings ``TEMPLATES``,
engine "pages"): Django's own URL, static and filter functions under the names the Django
templates use, and the shop's money formatter. Lives in catalog, the lowest app, so any app's
Jinja2 template may use it."""

from django.template import defaultfilters
from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment

from catalog.templatetags.catalog_tags import money as money_cents
from catalog.templatetags.money import money, percent


def url(name: str, *args, **kwargs) -> str:
    """``{{ url("cart:detail") }}``: ``{% url "cart:detail" %}``."""
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(url=url, static=static)
    env.filters.update(
        money=money,  # {% load money %}: catalog.pricing.format_money
        money_cents=money_cents,  # {% load catalog_tags %}'s money: to the cent
        percent=percent,
        date=defaultfilters.date,
        pluralize=defaultfilters.pluralize,
    )
    return env
