"""Deployment checks (`manage.py check --deploy`): what Django's own checks cannot know.

Django checks HTTPS and cookies; a pharmacy also needs emails that reach patients, real Stripe
keys, shared cache and sessions for more than one web process, PostgreSQL, and its licence details
rather than the demo's. Each warning names the variable that fixes it (docs/settings.md, "Production").
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOCAL_EMAIL_BACKENDS = {
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@register(Tags.security, deploy=True)
def check_production_services(app_configs=None, **kwargs) -> list[Warning]:
    warnings: list[Warning] = []
    if settings.EMAIL_BACKEND in LOCAL_EMAIL_BACKENDS:
        warnings.append(
            Warning(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: order and prescription emails would never reach anyone.",
                hint="Set EMAIL_URL (e.g. smtp+tls://user:pass@host:587) or EMAIL_BACKEND to an anymail backend.",
                id="pharmacy.W001",
            )
        )
    if not (
        settings.STRIPE_SECRET_KEY
        and settings.STRIPE_PUBLISHABLE_KEY
        and settings.STRIPE_WEBHOOK_SECRET
    ):
        warnings.append(
            Warning(
                "Stripe is not configured: checkout cannot take payments.",
                hint="Set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET.",
                id="pharmacy.W002",
            )
        )
    if settings.STRIPE_API_BASE or not settings.STRIPE_JS_URL.startswith("https://js.stripe.com/"):
        warnings.append(
            Warning(
                "STRIPE_API_BASE or STRIPE_JS_URL points away from Stripe (localstripe?).",
                hint="Leave STRIPE_API_BASE empty and STRIPE_JS_URL at its default in production.",
                id="pharmacy.W003",
            )
        )
    if not settings.REDIS_URL:
        warnings.append(
            Warning(
                "REDIS_URL is not set: the cache is per process and Celery tasks run inside web requests.",
                hint="Set REDIS_URL so several web processes share the cache and sessions and a worker sends emails.",
                id="pharmacy.W004",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        warnings.append(
            Warning(
                "The database is not PostgreSQL: orders are locked with SELECT ... FOR UPDATE, which needs it.",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/name.",
                id="pharmacy.W005",
            )
        )
    demo = [
        name
        for name in (
            "PHARMACY_LICENCE_NUMBER",
            "PHARMACIST_IN_CHARGE",
            "PHARMACY_EMAIL",
            "DEFAULT_FROM_EMAIL",
        )
        if "(demo)" in str(getattr(settings, name, ""))
        or "pharmacy.example" in str(getattr(settings, name, ""))
    ]
    if demo:
        warnings.append(
            Warning(
                f"Demo values are still shown to patients: {', '.join(demo)}.",
                hint="Set the pharmacy's real licence number, pharmacist in charge and email addresses.",
                id="pharmacy.W006",
            )
        )
    return warnings


@register(Tags.security)
def check_private_media_is_private(app_configs=None, **kwargs) -> list[Error]:
    """Prescriptions must never be reachable as public media or static files, in any environment."""
    from pathlib import Path

    private = Path(settings.PRIVATE_MEDIA_ROOT).resolve()
    errors: list[Error] = []
    for name in ("MEDIA_ROOT", "STATIC_ROOT"):
        public = getattr(settings, name, None)
        if not public:
            continue
        public = Path(public).resolve()
        if private == public or public in private.parents or private in public.parents:
            errors.append(
                Error(
                    f"PRIVATE_MEDIA_ROOT ({private}) overlaps {name} ({public}): uploaded prescriptions could be public.",
                    hint=f"Point PRIVATE_MEDIA_ROOT at a directory outside {name}.",
                    id="pharmacy.E001",
                )
            )
    return errors
