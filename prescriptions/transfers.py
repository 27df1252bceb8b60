"""Transfer in: a patient asks us to take over a prescription held by another pharmacy.

The rules, in one place:

* **Asking** (``transfer_request_create``): a signed-in patient names the other pharmacy (name,
  phone, the prescription number if known), the medicine, chosen from our prescription-only
  strengths, and the prescriber. Controlled substances are refused with the reason: we do not
  dispense them online, so we cannot take their prescriptions over. The same medicine asked for
  again while a request is open returns that request (a double click makes one request).
* **The pharmacist** moves it along ``care_states.TRANSFER_STEPS``: requested → contacted (the
  other pharmacy was called) → received or refused (with the reason the patient reads). Each
  step is permission-checked (``prescriptions.manage_transfer``), made on the locked row and
  leaves an event with who and when.
* **Received** (``transfer_receive``): the pharmacist records what the other pharmacy gave as a
  prescription on file (``prescriptions.on_file_record.prescription_on_file_record``: the same
  checks as one recorded at approval), with the fills still allowed there as its refills, and the
  last fill there (so the too-soon check works from the first refill here). A transferred
  prescription must still be valid and have a fill left; the patient then orders it like any
  refill, and the pharmacist checks it like any refill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import Dosage, LegalClass

from .care_states import TRANSFER_NEEDS_REASON, TRANSFER_OPEN, TRANSFER_STEPS, TransferStatus
from .care_steps import CareError, step
from .models import TransferRequest
from .on_file_record import RecordInput, prescription_on_file_record
from .refill_rules import RefillError, validity_days

PERMISSION = "prescriptions.manage_transfer"
CONTROLLED_REFUSAL = (
    "{medicine} is a controlled substance. We do not dispense controlled substances online, so "
    "we cannot take this prescription over; please keep it at your current pharmacy."
)


@dataclass(frozen=True)
class TransferInput:
    patient_name: str
    patient_date_of_birth: date
    pharmacy_name: str
    pharmacy_phone: str
    dosage_id: int
    prescriber_name: str
    prescriber_phone: str = ""
    pharmacy_rx_number: str = ""


@dataclass(frozen=True)
class ReceiveInput:
    """What the other pharmacy gave: the prescription as written and what is left of it."""

    directions: str
    daily_dose: object
    quantity_per_fill: int
    refills_left: int
    date_written: date
    expires_on: date
    prescriber_name: str
    prescriber_licence: str
    prescriber_phone: str = ""
    last_filled_on: date | None = None
    last_fill_pills: int | None = None
    note: str = ""


def transferable_dosages() -> QuerySet:
    """The strengths a patient may choose: published prescription-only medicines (one query)."""
    return (
        Dosage.objects.filter(
            product__legal_class=LegalClass.PRESCRIPTION, product__is_published=True
        )
        .select_related("product")
        .order_by("product__name", "strength_micrograms", "pk")
    )


def transfer_request_create(*, user, data: TransferInput) -> TransferRequest:
    """The patient's request; refused with the reason for a controlled or non-prescription medicine."""
    if user is None or not user.is_authenticated:
        raise CareError("Please sign in: a transfer belongs to your account.", status=403)
    dosage = Dosage.objects.select_related("product").filter(pk=data.dosage_id).first()
    if dosage is None:
        raise CareError("Please choose the medicine and strength from the list.", field="dosage")
    product = dosage.product
    if product.is_controlled:
        raise CareError(CONTROLLED_REFUSAL.format(medicine=product.name), field="dosage")
    if product.legal_class != LegalClass.PRESCRIPTION or not product.is_published:
        raise CareError(
            f"{product.name} {dosage.strength} needs no prescription here, or is not sold: "
            "please choose a prescription medicine from the list.",
            field="dosage",
        )
    if data.patient_date_of_birth > timezone.localdate():
        raise CareError("The date of birth cannot be in the future.", field="patient_date_of_birth")
    existing = TransferRequest.objects.filter(
        user=user, dosage=dosage, status__in=TRANSFER_OPEN
    ).first()
    if existing is not None:
        return existing
    transfer = TransferRequest.objects.create(
        user=user,
        patient_name=data.patient_name.strip(),
        patient_date_of_birth=data.patient_date_of_birth,
        pharmacy_name=data.pharmacy_name.strip(),
        pharmacy_phone=data.pharmacy_phone.strip(),
        pharmacy_rx_number=data.pharmacy_rx_number.strip(),
        dosage=dosage,
        medicine=product.name,
        strength=dosage.strength,
        prescriber_name=data.prescriber_name.strip(),
        prescriber_phone=data.prescriber_phone.strip(),
    )
    transfer.events.create(
        to_status=TransferStatus.REQUESTED, by=user, note="Asked by the patient."
    )
    return transfer


def _step(transfer: TransferRequest, to: str, *, by, note: str = "", effect=None):
    return step(
        model=TransferRequest,
        pk=transfer.pk,
        to=to,
        by=by,
        note=note,
        steps=TRANSFER_STEPS,
        needs_reason=TRANSFER_NEEDS_REASON,
        permission=PERMISSION,
        action="handle a prescription transfer",
        effect=effect,
    )


def transfer_mark_contacted(*, transfer: TransferRequest, by, note: str = "") -> TransferRequest:
    """The pharmacist has asked the other pharmacy for the prescription."""
    return _step(transfer, TransferStatus.CONTACTED, by=by, note=note)


def transfer_refuse(*, transfer: TransferRequest, by, reason: str) -> TransferRequest:
    """Not transferred (the other pharmacy has no refills left, it is not transferable...)."""
    return _step(transfer, TransferStatus.REFUSED, by=by, note=reason)


def receive_problem(data: ReceiveInput, *, today: date | None = None) -> str:
    """Why what the other pharmacy gave cannot be kept on file ('' when it can)."""
    today = today or timezone.localdate()
    if data.refills_left < 1:
        return "No fill is left on the prescription: there is nothing to transfer; refuse the transfer instead."
    if data.date_written > today:
        return "The date written is in the future."
    if data.expires_on < today:
        return (
            "The prescription has expired: it cannot be transferred; refuse the transfer instead."
        )
    if data.expires_on > data.date_written + timedelta(days=validity_days()):
        return f"A prescription is valid for at most {validity_days()} days from the date written."
    if (data.last_filled_on is None) != (data.last_fill_pills is None):
        return "Give both the last fill's date and its pills, or neither."
    if data.last_filled_on and not (data.date_written <= data.last_filled_on <= today):
        return "The last fill must be between the date written and today."
    if not (data.prescriber_name.strip() and data.prescriber_licence.strip()):
        return "The prescriber's name and licence or NPI number are needed to keep it on file."
    return ""


def transfer_receive(*, transfer: TransferRequest, by, data: ReceiveInput) -> TransferRequest:
    """Received: keep it on file for the patient, in the same transaction as the step."""
    problem = receive_problem(data)
    if problem:
        raise CareError(problem)

    def record(locked: TransferRequest) -> None:
        try:
            locked.prescription = prescription_on_file_record(
                user=locked.user,
                patient_name=locked.patient_name,
                patient_date_of_birth=locked.patient_date_of_birth,
                dosage=locked.dosage,
                data=RecordInput(
                    line_id=0,
                    directions=data.directions,
                    daily_dose=data.daily_dose,
                    quantity_per_fill=data.quantity_per_fill,
                    refills_authorised=data.refills_left,
                    date_written=data.date_written,
                    expires_on=data.expires_on,
                ),
                by=by,
                note=(
                    f"Transferred in from {locked.pharmacy_name} ({locked.pharmacy_phone})"
                    f"{', Rx ' + locked.pharmacy_rx_number if locked.pharmacy_rx_number else ''}: "
                    f"{data.refills_left} fill{'s' if data.refills_left != 1 else ''} left there."
                ),
                prescriber_name=data.prescriber_name.strip(),
                prescriber_phone=data.prescriber_phone.strip(),
                prescriber_licence=data.prescriber_licence.strip(),
                last_filled_on=data.last_filled_on,
                last_fill_pills=data.last_fill_pills,
            )
        except RefillError as exc:
            raise CareError(exc.message) from exc

    return _step(transfer, TransferStatus.RECEIVED, by=by, note=data.note, effect=record)


def transfers_for_patient(user) -> QuerySet:
    return TransferRequest.objects.filter(user=user).order_by("-created_at")


def transfer_queue() -> tuple[list[TransferRequest], list[TransferRequest]]:
    """Open requests, oldest first; and the last 20 closed ones (two queries)."""
    base = TransferRequest.objects.select_related("user")
    open_ = list(base.filter(status__in=TRANSFER_OPEN).order_by("created_at", "pk"))
    closed = list(base.exclude(status__in=TRANSFER_OPEN).order_by("-updated_at", "-pk")[:20])
    return open_, closed
