"""django-axes hooks: failed logins are counted per account, whatever the email's case."""
from django.http import HttpRequest


def axes_username(request: HttpRequest, credentials: dict | None) -> str:
    """The login as axes should count it: stripped and lower-cased, like ``User.email``."""
    value = None
    if credentials:
        value = credentials.get("username") or credentials.get("email")
    if value is None and request is not None:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        value = data.get("username")
    return (value or "").strip().lower()
