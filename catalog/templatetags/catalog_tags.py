"""Template helpers of the storefront: money display and safe JSON-LD output."""

from __future__ import annotations

import json
from decimal import Decimal

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.safestring import mark_safe
from moneyed import Money

register = template.Library()

CURRENCY_SYMBOLS = {"USD": "$"}

# The same escapes as django.utils.html.json_script: nothing in the data can close the
# <script> element or open an HTML comment.
JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def money(value) -> str:
    """``$1,234.50``: a Money (already rounded by catalog.pricing) shown to the cent."""
    if value is None or value == "":
        return ""
    if isinstance(value, Money):
        amount, code = value.amount, str(value.currency)
    else:
        amount, code = Decimal(value), "USD"
    text = f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if amount < 0:
        return f"-{symbol}{text[1:]}" if symbol else f"-{code} {text[1:]}"
    return f"{symbol}{text}" if symbol else f"{code} {text}"


@register.inclusion_tag("catalog/_json_ld.html")
def json_ld(data: dict) -> dict:
    """The data as JSON-LD, escaped so it cannot close its script element (``<``, ``>``, ``&``)."""
    payload = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(
        JSON_SCRIPT_ESCAPES
    )
    return {"payload": mark_safe(payload)}  # escaped above


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current listing query string with some parameters changed (``None`` removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
