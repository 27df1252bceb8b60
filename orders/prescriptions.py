"""Prescription orders: the record the customer gave at checkout, and the checks around it.

What is here: who counts as a pharmacist, the intake (patient, items, uploaded copies or the
prescriber's details) written with the order, the review queue's selectors (oldest card hold
first, when a hold lapses) and the review state the order page shows. The pharmacist's decisions
are in ``orders.prescription_decisions``; shipping is ``orders.fulfilment``; prescriptions kept
on file and refills are ``orders.prescription_records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import DateTimeField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .files import CheckedUpload, private_storage
from .models import (
    Order,
    OrderEvent,
    OrderLine,
    PatientDetails,
    Prescription,
    PrescriptionReview,
    ReviewAction,
)
from .services import OrderError
from .state import OrderStatus, PaymentStatus

PHARMACIST_GROUP = "pharmacist"
LAPSE_CUSTOMER_REASON = (
    "We could not finish checking your prescription within 7 days, which is as long as your bank "
    "holds a card payment for us. The hold has lapsed, so we have canceled the order and nothing "
    "was charged. You are welcome to order again, or call us and we will help."
)


# --- Who may review -------------------------------------------------------------------------


def is_pharmacist(user) -> bool:
    """Pharmacists (the "pharmacist" group) and superusers; cached on the user for the request."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_pharmacist", None)
    if cached is None:
        cached = user.groups.filter(name=PHARMACIST_GROUP).exists()
        user._is_pharmacist = cached
    return cached


# --- Checkout: what the customer gave -------------------------------------------------------


@dataclass(frozen=True)
class PrescriptionItem:
    """For one prescription item in the cart (by package tier): a copy, the prescriber, or both."""

    tier_id: int
    upload: CheckedUpload | None = None
    prescriber_name: str = ""
    prescriber_phone: str = ""
    prescriber_licence: str = ""


@dataclass(frozen=True)
class PrescriptionIntake:
    patient_name: str
    date_of_birth: date
    allergies: str = ""
    current_medicines: str = ""
    items: tuple[PrescriptionItem, ...] = field(default_factory=tuple)


def age_on(*, born: date, today: date) -> int:
    """Whole years, as a birthday counts them (born 29 Feb: a year older on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def prescriptions_record(*, order: Order, intake: PrescriptionIntake) -> list[Prescription]:
    """Attach the patient and the prescriptions to a new order, inside ``order_place``'s transaction.

    Uploaded files are written only once that transaction commits: a checkout refused after this
    point (stock ran out, a price changed) rolls back and leaves no file behind.
    """
    PatientDetails.objects.create(
        order=order,
        name=intake.patient_name.strip(),
        date_of_birth=intake.date_of_birth,
        allergies=intake.allergies.strip(),
        current_medicines=intake.current_medicines.strip(),
    )
    # Lines filled from a prescription on file (issue #16, linked just before) need no new prescription.
    lines = {
        line.tier_id: line
        for line in OrderLine.objects.filter(
            order=order, requires_prescription=True, refill__isnull=True
        )
    }
    items = {item.tier_id: item for item in intake.items}
    missing = [line for tier_id, line in lines.items() if tier_id not in items]
    if missing:
        raise OrderError(
            f"Please upload a prescription or give the prescriber's details for {missing[0]}."
        )
    created = []
    for tier_id, line in lines.items():
        item = items[tier_id]
        name = item.upload.new_name() if item.upload else ""
        prescription = Prescription.objects.create(
            order=order,
            line=line,
            description=f"{line.product_name} {line.strength}, {line.pack_size} pills",
            file=name,
            content_type=item.upload.content_type if item.upload else "",
            size=item.upload.size if item.upload else None,
            prescriber_name=item.prescriber_name.strip(),
            prescriber_phone=item.prescriber_phone.strip(),
            prescriber_licence=item.prescriber_licence.strip(),
        )
        if item.upload:
            # Read now (at most PRESCRIPTION_MAX_UPLOAD_BYTES): the upload may be closed by commit time.
            item.upload.file.seek(0)
            content = ContentFile(item.upload.file.read())
            transaction.on_commit(partial(_write_upload, prescription.pk, name, content))
        created.append(prescription)
    return created


def _write_upload(prescription_id, name: str, upload) -> None:
    storage = private_storage()
    saved = storage.save(name, upload)
    if saved != name:  # never expected with random names; keep the record pointing at the file
        Prescription.objects.filter(pk=prescription_id).update(file=saved)


# --- The queue ------------------------------------------------------------------------------


def hold_validity() -> timedelta:
    """How long Stripe keeps a manual-capture card hold (7 days)."""
    return timedelta(hours=getattr(settings, "STRIPE_AUTHORISATION_VALIDITY_HOURS", 7 * 24))


def with_authorised_at(queryset: QuerySet) -> QuerySet:
    """Annotate ``authorised_at``: when the card hold began (the payment -> authorized event).

    The order's creation stands in if the event is missing; it is earlier, so the time left
    errs on the short side.
    """
    event = OrderEvent.objects.filter(
        order=OuterRef("pk"), kind=OrderEvent.Kind.PAYMENT, to_status=PaymentStatus.AUTHORIZED
    ).order_by("-created_at")
    return queryset.annotate(
        authorised_at=Coalesce(
            Subquery(event.values("created_at")[:1]), "created_at", output_field=DateTimeField()
        )
    )


def review_queue() -> QuerySet:
    """Orders waiting for a pharmacist, the oldest card hold first, with everything the page shows."""
    return (
        with_authorised_at(Order.objects.filter(status=OrderStatus.AWAITING_REVIEW))
        .select_related("patient", "user")
        .prefetch_related(
            "lines",
            Prefetch(
                "prescriptions", queryset=Prescription.objects.order_by("created_at", "description")
            ),
            Prefetch("reviews", queryset=PrescriptionReview.objects.select_related("by")),
        )
        .order_by("authorised_at", "created_at")
    )


def hold_expires_at(order: Order) -> datetime:
    return order.authorised_at + hold_validity()


# --- What the customer sees -----------------------------------------------------------------


@dataclass(frozen=True)
class ReviewState:
    code: str  # awaiting | information_requested | approved | approved_with_changes | rejected | expired
    label: str
    detail: str = ""


def review_state(*, order: Order, reviews: list[PrescriptionReview]) -> ReviewState | None:
    """The review in plain words for the order page; None for an order that needs no review."""
    latest = reviews[-1] if reviews else None
    if latest is None:
        if order.status == OrderStatus.AWAITING_REVIEW:
            return ReviewState("awaiting", "Awaiting pharmacist review")
        return None
    if latest.action == ReviewAction.INFORMATION_REQUESTED:
        if order.status == OrderStatus.AWAITING_REVIEW:
            return ReviewState("information_requested", "More information requested", latest.note)
        return None
    if latest.action == ReviewAction.APPROVED:
        return ReviewState("approved", "Approved")
    if latest.action == ReviewAction.APPROVED_WITH_CHANGES:
        return ReviewState("approved_with_changes", "Approved with changes", latest.note)
    if latest.action == ReviewAction.REJECTED:
        return ReviewState("rejected", "Not approved", latest.note)
    if latest.action == ReviewAction.AUTHORISATION_EXPIRED:
        return ReviewState(
            "expired", "Canceled: card authorisation expired before review", LAPSE_CUSTOMER_REASON
        )
    return None
