"""Demo data for auto-refill (issue 25): ``python manage.py setup_demo_autorefill``.

Run after ``setup_demo_prescriptions`` and once localstripe is up (``scripts/run_demo.sh`` does
both). The demo patient's baclofen prescription stays available for opting in by hand (its page
links to auto-refill). A second prescription on file, amlodipine 5 mg, is opted in with
Stripe's test card, and its refill due today is placed by the auto-refill job: an order held
off-session, waiting in the pharmacist's refill queue. Run again, it changes nothing.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from catalog.models import PackageTier
from payments import stripe_gateway as gateway
from prescriptions import autorefill as service
from prescriptions import refill_rules as records
from prescriptions.management.commands.setup_demo_prescriptions import DEMO_EMAIL
from prescriptions.models import AutoRefillRun, PrescriptionOnFile, PrescriptionOnFileEvent

ADDRESS = service.Address(
    name="Jane Doe", line1="100 River Street", city="Albany", state="NY", zip_code="12207"
)


class Command(BaseCommand):
    help = (
        "Opt the demo patient's amlodipine prescription into auto-refill and place today's refill."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow with DEBUG off.")

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Demo data is for local use; pass --force to create it anyway.")
        if not settings.STRIPE_API_BASE:
            raise CommandError(
                "Start localstripe first (STRIPE_API_BASE): the card is saved there."
            )
        user = get_user_model().objects.filter(email=DEMO_EMAIL).first()
        tier = (
            PackageTier.objects.active()
            .filter(dosage__product__slug="amlodipine", dosage__strength="5mg")
            .order_by("-quantity")
            .first()
        )
        if user is None or tier is None:
            raise CommandError("Run setup_demo_prescriptions with the demo catalog loaded first.")
        record = self._record(user, tier)
        if AutoRefillRun.objects.filter(
            autorefill__prescription=record, order__isnull=False
        ).exists():
            self.stdout.write("Demo auto-refill already placed; nothing changed.")
            return
        autorefill, _secret, _quote = service.autorefill_start(
            user=user,
            record_id=record.pk,
            tier_id=tier.pk,
            address=ADDRESS,
            shipping_method="standard",
        )
        gateway.demo_confirm_setup_intent(setup_intent_id=autorefill.stripe_setup_intent_id)
        autorefill = service.autorefill_confirm(
            user=user, record_id=record.pk, setup_intent_id=autorefill.stripe_setup_intent_id
        )
        order = service.autorefill_place(autorefill_id=autorefill.pk)
        if order is None:
            raise CommandError("The demo auto-refill was not placed; see its history in the admin.")
        self.stdout.write(
            f"Demo auto-refill: order {order.number} placed off-session, in the pharmacist's refill queue."
        )

    def _record(self, user, tier) -> PrescriptionOnFile:
        existing = PrescriptionOnFile.objects.filter(user=user, dosage=tier.dosage).first()
        if existing:
            return existing
        # Filled so that today is the first day the refill code allows the next refill.
        filled = timezone.localdate() - timedelta(
            days=math.ceil(tier.quantity * records.too_soon_fraction())
        )
        written = filled - timedelta(days=3)
        with transaction.atomic():
            record = PrescriptionOnFile.objects.create(
                user=user,
                patient_name="Jane Doe",
                patient_date_of_birth=date(1980, 5, 17),
                dosage=tier.dosage,
                medicine=tier.dosage.product.name,
                strength=tier.dosage.strength,
                directions="1 tablet once a day",
                daily_dose=Decimal("1"),
                quantity_per_fill=tier.quantity,
                refills_authorised=5,
                date_written=written,
                expires_on=records.default_expiry(written),
                prescriber_name="Dr. Ruth Okafor",
                prescriber_phone="518-555-0101",
                prescriber_licence="1234567890",
                last_filled_on=filled,
                last_fill_pills=tier.quantity,
            )
            PrescriptionOnFileEvent.objects.create(
                prescription=record,
                kind="recorded",
                note="Demo data: recorded from the prescriber's call.",
            )
        return record
