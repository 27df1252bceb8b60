"""Order helpers for templates: the receipt link and address for emails, money as stored."""

import re

from django import template

register = template.Library()


@register.filter
def receipt_link(order_url: str) -> str:
    """The printable receipt of an order, from the order's signed link (``…/orders/N/?t=…``)."""
    path, sep, query = order_url.partition("?")
    return f"{path.rstrip('/')}/receipt/{sep}{query}"


@register.inclusion_tag("orders/_phone.html")
def phone(number: str) -> dict:
    """A US number as ``(518) 555-0101``, kept on one line and dialable; anything else as given."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return {"number": number or "", "digits": ""}
    return {"number": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "digits": digits}


@register.filter
def tidy_money(text: str) -> str:
    """Stored notes spell some amounts ``$ 78.18``; shown as ``$78.18`` like every other amount."""
    return re.sub(r"\$\s+(?=\d)", "$", text or "")
