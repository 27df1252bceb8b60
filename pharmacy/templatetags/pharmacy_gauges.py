"""The pharmacy's gauges on the admin index (``pharmacy.metrics.gauge_readings``), for staff only."""

from django import template

from pharmacy.metrics import gauge_readings

register = template.Library()


@register.simple_tag(takes_context=True)
def pharmacy_gauges(context):
    """The readings for a staff user; None for anyone else (and no query)."""
    user = getattr(context.get("request"), "user", None) or context.get("user")
    if user is None or not getattr(user, "is_staff", False):
        return None
    return gauge_readings()
