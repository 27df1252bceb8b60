"""A demo customer with prescriptions on file (issue #16), for the README walkthrough.

Idempotent; refused with DEBUG off unless ``--force``. Creates ``patient@pharmacy.example``
(password printed) with a shipped, paid baclofen 10 mg order kept on file with 3 refills, last
filled 25 days ago (so a refill can be asked for, and a reminder is due), with reminders on;
and a question to the pharmacist about it, not answered yet (the inbox shows it waiting).
No Stripe call: the demo order is written as already paid.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from cart import calculations
from catalog.models import PackageTier
from orders.models import Order, OrderLine, OrderNumber
from orders.state import OrderStatus, PaymentStatus
from prescriptions.care_demo import demo_transfer_request
from prescriptions.messages import message_post_by_patient, thread_of
from prescriptions.models import (
    PatientDetails,
    Prescription,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
    RefillReminderSettings,
)
from prescriptions.refill_rules import default_expiry

DEMO_EMAIL = "patient@pharmacy.example"
DEMO_QUESTION = (
    "Hello, I have been taking baclofen three times a day for a few weeks now. Is it safe to take "
    "ibuprofen for a headache with it? And should I avoid a glass of wine in the evening?"
)
DEMO_PASSWORD = "demo-pharmacy-patient-2024"


class Command(BaseCommand):
    help = "Create a demo customer with a baclofen prescription on file (3 refills)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow with DEBUG off.")

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Demo customers are for local use; pass --force to create one anyway."
            )
        tier = (
            PackageTier.objects.filter(
                dosage__product__slug="baclofen", dosage__strength="10mg", quantity=90
            )
            .select_related("dosage__product")
            .first()
        )
        if tier is None:
            raise CommandError("Load the demo catalog first (baclofen 10mg × 90 is needed).")
        User = get_user_model()
        with transaction.atomic():
            user, _ = User.objects.get_or_create(
                email=DEMO_EMAIL, defaults={"first_name": "Jane", "last_name": "Doe"}
            )
            user.set_password(DEMO_PASSWORD)
            user.save()
            # Signing in needs a verified address (allauth); the demo customer's is verified here.
            EmailAddress.objects.update_or_create(
                user=user, email=user.email, defaults={"verified": True, "primary": True}
            )
            RefillReminderSettings.objects.update_or_create(user=user, defaults={"reminders": True})
            if not PrescriptionOnFile.objects.filter(user=user).exists():
                self._prescription_on_file(user, tier)
            self._question_waiting(user)
            # Issue 25: a transfer request waiting in the pharmacist's transfer queue.
            transfer = demo_transfer_request(user)
        self.stdout.write(
            f"Demo customer with a prescription on file: {DEMO_EMAIL} / {DEMO_PASSWORD}"
        )
        self.stdout.write("  and a question waiting for the pharmacist in Messages (issue 25).")
        if transfer is not None:
            self.stdout.write(
                f"Their transfer request {transfer.pk} ({transfer.get_status_display().lower()}) "
                "is in the transfer queue: /staff/transfers/"
            )

    def _question_waiting(self, user) -> None:
        """Once: an unanswered question about the demo prescription, for the pharmacist's inbox."""
        if thread_of(user) is not None:
            return
        record = PrescriptionOnFile.objects.filter(user=user).order_by("created_at").first()
        message_post_by_patient(
            patient=user,
            body=DEMO_QUESTION,
            order=record.source_order if record else None,
            prescription=record,
        )

    def _prescription_on_file(self, user, tier) -> None:
        filled = timezone.localdate() - timedelta(days=25)
        price = tier.price
        # The demo order's figures come from the calculation module, like every real order's.
        totals = calculations.calculate(
            lines=[
                calculations.LineInput(
                    key=tier.pk,
                    unit_price=price,
                    list_price=tier.list_price,
                    packages=1,
                    legal_class=tier.dosage.product.legal_class,
                )
            ],
            currency=str(price.currency),
            policy=calculations.shipping_policy(),
        )
        shipping, total = totals.shipping, totals.total
        order = Order.objects.create(
            number=OrderNumber.objects.create().number,
            user=user,
            email=user.email,
            status=OrderStatus.SHIPPED,
            payment_status=PaymentStatus.CAPTURED,
            ship_name="Jane Doe",
            ship_line1="100 River Street",
            ship_city="Albany",
            ship_state="NY",
            ship_zip="12207",
            shipping_method="standard",
            subtotal=totals.subtotal,
            savings=totals.savings,
            shipping=shipping,
            total=total,
            amount_captured=total,
            amount_refunded=Money(0, "USD"),
            has_prescription_items=True,
        )
        line = OrderLine.objects.create(
            order=order,
            tier=tier,
            product_name=tier.dosage.product.name,
            strength=tier.dosage.strength,
            pack_size=tier.quantity,
            packages=1,
            unit_price=price,
            per_pill=Money(round(price.amount / tier.quantity, 2), "USD"),
            list_price=tier.list_price,
            line_total=price,
            requires_prescription=True,
        )
        PatientDetails.objects.create(order=order, name="Jane Doe", date_of_birth=date(1980, 5, 17))
        source = Prescription.objects.create(
            order=order,
            line=line,
            description=f"{line.product_name} {line.strength}, {line.pack_size} pills",
            prescriber_name="Dr. Ruth Okafor",
            prescriber_phone="518-555-0101",
            prescriber_licence="1234567890",
        )
        written = filled - timedelta(days=2)
        record = PrescriptionOnFile.objects.create(
            user=user,
            patient_name="Jane Doe",
            patient_date_of_birth=date(1980, 5, 17),
            dosage=tier.dosage,
            medicine=line.product_name,
            strength=line.strength,
            directions="1 tablet 3 times a day",
            daily_dose=Decimal("3"),
            quantity_per_fill=90,
            refills_authorised=3,
            date_written=written,
            expires_on=default_expiry(written),
            prescriber_name=source.prescriber_name,
            prescriber_phone=source.prescriber_phone,
            prescriber_licence=source.prescriber_licence,
            source_order=order,
            source_prescription=source,
            last_filled_on=filled,
            last_fill_pills=90,
        )
        PrescriptionOnFileEvent.objects.create(
            prescription=record, kind="recorded", order=order, note="Demo data."
        )
        PrescriptionOnFileEvent.objects.create(
            prescription=record,
            kind="fill",
            order=order,
            pills=90,
            refills_counted=0,
            fill_number=0,
            filled_on=filled,
            note="First fill (demo).",
        )
