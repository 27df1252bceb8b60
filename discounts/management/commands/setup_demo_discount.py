"""The demo's discount code, so ``make run`` shows a discount line at checkout. Idempotent."""

from decimal import Decimal

from django.core.management.base import BaseCommand

from discounts.models import DiscountCode, DiscountKind

CODE = "WELCOME10"


class Command(BaseCommand):
    help = f"Create the demo discount code {CODE} (10% off non-prescription medicines) if missing."

    def handle(self, *args, **options):
        _, created = DiscountCode.objects.get_or_create(
            code=CODE,
            defaults={
                "description": "Demo: 10% off general-sale and pharmacy-only medicines, once per customer.",
                "kind": DiscountKind.PERCENT,
                "value": Decimal("10"),
                "max_uses_per_email": 1,
            },
        )
        self.stdout.write(
            f"Demo discount code {CODE}: {'created' if created else 'already present'}."
        )
