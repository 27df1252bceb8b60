"""The cart's lines as the cart and checkout templates print them: plain dicts, money as HTML text.

Two costs of the template engine dominated these pages (issue #17): printing a ``Money``
(djmoney formats it through babel, about 15 times per page) and reading a field of a
dataclass (the engine first tries ``line["field"]``, an exception for anything but a mapping,
then the attribute; ~35 reads per line). ``shown_lines`` hands the templates one dict per line
whose money is already the text ``{{ money }}`` writes, so a line reads at dictionary speed and
each amount is formatted once per distinct amount and locale (``money_html``); whole numbers
come as text too (``{{ n }}`` looks up three locale formats per number printed). The dicts carry
the same names as ``cart.pricing.CartLineSummary`` (plus its ``shows_saving`` and ``description``),
so the templates read ``line.unit_price`` as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from djmoney.money import Money, get_current_locale

from .pricing import CartLineSummary

MAX_REMEMBERED = 4096
_html: dict[tuple, SafeString] = {}


def money_html(value: Money, *, locale: str | None = None) -> SafeString:
    """What ``{{ value }}`` writes for a djmoney ``Money`` (``str()``, escaped), remembered.

    The text depends on the amount as written (``Decimal`` keeps its places), the currency,
    djmoney's locale (from the active language) and per-amount format options (then not
    remembered). ``locale``: ``djmoney.money.get_current_locale()``, when the caller has it.
    """
    if type(value) is not Money or value.format_options:
        return conditional_escape(str(value))
    key = (str(value.amount), value.currency.code, locale or get_current_locale())
    text = _html.get(key)
    if text is None:
        text = conditional_escape(str(value))
        if len(_html) >= MAX_REMEMBERED:
            del _html[next(iter(_html))]
        _html[key] = text
    return text


def _number_text() -> Callable[[int], SafeString]:
    """What ``{{ n }}`` writes for a whole number ``n`` under the active formats (localised,
    escaped). Without digit grouping (``USE_THOUSAND_SEPARATOR`` off, the shop's setting) that
    is ``str(n)``, which a probe tells once per page instead of three format lookups per number."""
    probe = -(10**15)
    if str(localize(probe)) == str(probe):  # no grouping: what the template's str() gives
        return lambda n: SafeString(n)
    return lambda n: conditional_escape(str(localize(n)))


def number_html(n: int) -> SafeString:
    """What ``{{ n }}`` writes for one whole number (see ``_number_text``)."""
    return _number_text()(n)


def shown_line(line: CartLineSummary, *, locale: str | None = None, number=None) -> dict:
    """One line for the templates: ``CartLineSummary``'s fields, amounts as ``money_html`` and
    whole numbers as the text ``{{ n }}`` writes (``line_id`` alone is printed five times)."""
    money = partial(money_html, locale=locale or get_current_locale())
    number = number or _number_text()
    return {
        "line_id": number(line.line_id),
        "tier_id": line.tier_id,
        "product_name": line.product_name,
        "product_slug": line.product_slug,
        "strength": line.strength,
        "pack_size": number(line.pack_size),
        "packages": number(line.packages),
        "unit_price": money(line.unit_price),
        "per_pill": money(line.per_pill),
        "list_price": money(line.list_price),
        "savings_per_package": money(line.savings_per_package),
        "savings_percent": number(line.savings_percent),
        "line_total": money(line.line_total),
        "line_savings": money(line.line_savings),
        "discount": money(line.discount),
        "tax": money(line.tax),
        "legal_class": line.legal_class,
        "product_id": line.product_id,
        "requires_prescription": line.requires_prescription,
        "price_when_added": money(line.price_when_added)
        if line.price_when_added is not None
        else None,
        "price_changed": line.price_changed,
        "available": line.available,
        "notice": line.notice,
        "pills": number(line.pills),
        "shows_saving": line.shows_saving,
        "description": line.description,
    }


def shown_lines(lines: Iterable[CartLineSummary]) -> list[dict]:
    locale, number = get_current_locale(), _number_text()
    return [shown_line(line, locale=locale, number=number) for line in lines]


def shown_totals(summary) -> dict:
    """A ``CartSummary``'s amounts as ``money_html`` (and its ``item_count`` as printed), under
    the summary's own names."""
    money = partial(money_html, locale=get_current_locale())
    return {
        "item_count": number_html(summary.item_count),
        "subtotal": money(summary.subtotal),
        "savings": money(summary.savings),
        "shipping": money(summary.shipping),
        "total": money(summary.total),
        "free_shipping_threshold": money(summary.free_shipping_threshold),
        "free_shipping_remaining": money(summary.free_shipping_remaining),
    }
