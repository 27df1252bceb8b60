"""``{{ amount|money }}``: the one money formatter (catalog.pricing.format_money) in templates."""

from django import template

from catalog.pricing import format_money

register = template.Library()


@register.filter(name="money")
def money(value) -> str:
    return format_money(value)


@register.filter(name="percent")
def percent(value) -> str:
    """``8.875`` → ``8.875%``, ``6.000`` → ``6%``."""
    if value is None:
        return ""
    text = format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)
    return f"{text}%"
