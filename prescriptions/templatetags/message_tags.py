"""Message counts for the header, the account page and the review page."""

from django import template

from prescriptions import messages as rx_messages

register = template.Library()


@register.simple_tag(takes_context=True)
def messages_waiting_count(context) -> int | None:
    """Patients waiting for an answer, for staff who may answer; None for anyone else.

    Customers and visitors cost no query (only staff are asked for the permission); staff cost
    the permission lookup (cached on the user) and one COUNT (cached on the request)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not getattr(user, "is_staff", False):
        return None
    if not rx_messages.can_answer_messages(user):
        return None
    counted = getattr(request, "_messages_waiting", None)
    if counted is None:
        counted = rx_messages.waiting_count()
        if request is not None:
            request._messages_waiting = counted  # the header and the review queue show it once
    return counted


@register.simple_tag(takes_context=True)
def patient_unread_messages(context) -> int:
    """Messages from the pharmacy the signed-in patient has not read yet."""
    user = getattr(context.get("request"), "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return 0
    return rx_messages.unread_for_patient(user)


@register.simple_tag
def patient_unread_for_pharmacy(patient) -> int:
    return rx_messages.unread_for_pharmacy(patient)
