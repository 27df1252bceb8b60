from django.apps import AppConfig


class PharmacyConfig(AppConfig):
    """The project package as an app, so its deployment checks run with `check --deploy`."""

    name = "pharmacy"
    verbose_name = "Pharmacy deployment"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the checks)
            logging,  # noqa: F401  (connects the request-id Celery signals)
        )
