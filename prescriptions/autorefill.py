"""Auto-refill (issue 25): opting in with a saved card, the notice, skip / change date / pause,
and the daily placement of the refill order itself. The rules are in ``autorefill_rules``.

* **Opting in** (``autorefill_start`` then ``autorefill_confirm``): the patient chooses the pack
  and the address, sees the price, the first due date and the terms, and saves a card through a
  Stripe SetupIntent confirmed in their browser. Only when Stripe reports the card saved is the
  consent recorded (its words, when, until when) and auto-refill turned on.
* **The job** (``autorefills_run``, Celery beat): notices go out ``notice_days`` before a due date
  with signed links; on the due date the refill order is placed through the refill checkout path
  (``checkout.placement.order_place`` on the auto-refill's own cart), its hold asked for
  off-session on the saved card. The order waits for the pharmacist like any refill.
* **Once per due date**: each placement first claims an ``AutoRefillRun`` row, unique per
  (auto-refill, due date), on the auto-refill row locked with ``SKIP LOCKED``: a second job run at
  the same time skips the row, or finds the claim and places nothing.
* **Pausing**: a declined card, a bank asking for authentication, an expired prescription, no
  refills left, a lapsed consent or a changed price pause it, and the patient is told by email
  (subject without medicine). No refills left also asks for a renewal (``renewal_hook``).
* Every step leaves an ``autorefill`` event on the prescription on file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from cart.models import Cart
from cart.pricing import cart_summary
from cart.services import CartError, cart_add_tier
from catalog.models import PackageTier
from catalog.pricing import format_money
from checkout.figures import CheckoutChanged, checkout_figures
from checkout.placement import order_place
from checkout.pricing_inputs import order_pricing_inputs
from orders import services as order_services
from orders.models import Order
from orders.services import ShippingAddress
from orders.state import OrderStatus
from payments import stripe_gateway as gateway

from . import autorefill_emails as emails
from . import autorefill_rules as rules
from .models import (
    AutoRefill,
    AutoRefillRun,
    AutoRefillStatus,
    CartRefill,
    OrderRefill,
    PauseReason,
    PrescriptionOnFile,
    PrescriptionOnFileEvent,
)
from .refill_rules import RefillError, refill_packs

logger = logging.getLogger(__name__)
Status = AutoRefillStatus
OPEN_ORDER_STATUSES = (OrderStatus.PENDING_PAYMENT, OrderStatus.AWAITING_REVIEW)


class AutoRefillError(Exception):
    """A request about auto-refill that cannot be carried out; ``message`` is fit to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


#: Where an auto-refill ships: the checkout's own address type.
Address = ShippingAddress


@dataclass(frozen=True)
class Quote:
    figures: str  # ``checkout.figures.checkout_figures``: what the order must match
    total: str  # formatted, as shown
    due_on: date


def audit(record_id: int, step: str, note: str, *, by=None, order=None, **changes) -> None:
    """The auto-refill's history, on the prescription on file (append-only)."""
    PrescriptionOnFileEvent.objects.create(
        prescription_id=record_id,
        kind=PrescriptionOnFileEvent.Kind.AUTOREFILL,
        order=order,
        by=by if getattr(by, "is_authenticated", False) else None,
        note=note,
        changes={"step": step, **{k: str(v) for k, v in changes.items()}},
    )


# --- Reading --------------------------------------------------------------------------------


def own_record(*, user, record_id) -> PrescriptionOnFile:
    try:
        record = (
            PrescriptionOnFile.objects.select_related("dosage__product")
            .filter(pk=int(record_id), user=user)
            .first()
        )
    except (TypeError, ValueError):
        record = None
    if record is None:
        raise AutoRefillError("No such prescription on file.")
    return record


def packs_for(record) -> list[PackageTier]:
    """The packs auto-refill may send: of the prescribed strength, within the refills left."""
    return [pack["tier"] for pack in refill_packs(record) if pack["allowed"]]


def autorefill_for(record) -> AutoRefill | None:
    return AutoRefill.objects.filter(prescription=record).first()


# --- Pricing: the auto-refill's own cart ------------------------------------------------------


def _cart_with_pack(autorefill: AutoRefill) -> Cart:
    """The auto-refill's cart holding exactly its pack, linked to the prescription (as the
    Refill button links it). Never the patient's shopping cart."""
    cart = autorefill.cart
    if cart is None:
        cart, _ = Cart.objects.get_or_create(session_key=f"autorefill-{autorefill.pk}")
        autorefill.cart = cart
        autorefill.save(update_fields=["cart", "updated_at"])
    lines = list(cart.lines.all())
    if [(line.tier_id, line.packages) for line in lines] != [(autorefill.tier_id, 1)]:
        cart.lines.all().delete()
        try:
            change = cart_add_tier(cart=cart, tier_id=autorefill.tier_id, packages=1)
        except CartError as exc:
            raise AutoRefillError(str(getattr(exc, "message", exc))) from exc
        CartRefill.objects.create(cart_line=change.line, prescription_id=autorefill.prescription_id)
    elif not CartRefill.objects.filter(cart_line=lines[0]).exists():
        CartRefill.objects.create(cart_line=lines[0], prescription_id=autorefill.prescription_id)
    else:
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())  # not an idle cart
    return cart


def _summary(autorefill: AutoRefill, cart: Cart):
    return cart_summary(
        cart,
        method=autorefill.shipping_method,
        **order_pricing_inputs(cart=cart, state=autorefill.ship_state, email=autorefill.user.email),
    )


def autorefill_price(*, autorefill: AutoRefill, due_on: date) -> Quote:
    """Price the refill now, from ``cart.calculations`` (through the cart summary)."""
    summary = _summary(autorefill, _cart_with_pack(autorefill))
    if not summary.available_lines:
        raise AutoRefillError("This pack cannot be ordered at the moment.")
    return Quote(
        figures=checkout_figures(summary),
        total=format_money(summary.total),
        due_on=due_on,
    )


def autorefill_quote(*, autorefill: AutoRefill, due_on: date) -> Quote:
    """Price the refill now and keep it as the figures the order placed on ``due_on`` must
    match (what the patient was last shown: the opt-in page, the notice, the resume button)."""
    quote = autorefill_price(autorefill=autorefill, due_on=due_on)
    autorefill.quoted_for = due_on
    autorefill.quoted_figures = quote.figures
    autorefill.quoted_total = quote.total
    autorefill.save(update_fields=["quoted_for", "quoted_figures", "quoted_total", "updated_at"])
    return quote


# --- Opting in ----------------------------------------------------------------------------------


def _stripe_customer_for(user) -> str:
    """The patient's Stripe customer (one per account, reused for every auto-refill)."""
    known = (
        AutoRefill.objects.filter(user=user)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if known:
        return known
    return gateway.create_customer(
        account_ref=str(user.pk), idempotency_key=f"account-{user.pk}-customer"
    )


def autorefill_start(
    *, user, record_id, tier_id, address: Address, shipping_method: str, today: date | None = None
) -> tuple[AutoRefill, str, Quote]:
    """Step one of opting in: check, price and ask Stripe for a SetupIntent. Returns the
    auto-refill (not on yet), the SetupIntent's client secret for the browser, and the quote."""
    today = today or timezone.localdate()
    record = own_record(user=user, record_id=record_id)
    tier = _pack(record, tier_id)
    reason = rules.refusal(record, tier=tier, today=today)
    if reason:
        audit(record.pk, "refused", f"Opt-in refused: {reason}", by=user)
        raise AutoRefillError(reason)
    if shipping_method not in ("standard", "express"):
        raise AutoRefillError("Please choose a shipping method.")
    with transaction.atomic():
        PrescriptionOnFile.objects.select_for_update().get(pk=record.pk)
        autorefill, _ = AutoRefill.objects.get_or_create(
            prescription=record, defaults={"user": user, "tier": tier}
        )
        if autorefill.is_active:
            raise AutoRefillError("Auto-refill is already on for this prescription.")
        autorefill.tier = tier
        autorefill.ship_name = address.name
        autorefill.ship_line1 = address.line1
        autorefill.ship_line2 = address.line2
        autorefill.ship_city = address.city
        autorefill.ship_state = address.state
        autorefill.ship_zip = address.zip_code
        autorefill.shipping_method = shipping_method
        autorefill.save()
        quote = autorefill_quote(
            autorefill=autorefill, due_on=rules.earliest_due(record, today=today)
        )
    try:
        customer = _stripe_customer_for(user)
        setup = gateway.create_setup_intent(
            customer_id=customer,
            reference=f"autorefill-{autorefill.pk}",
            idempotency_key=f"autorefill-{autorefill.pk}-setup-{timezone.now().timestamp():.0f}",
        )
    except gateway.PaymentGatewayError as exc:
        raise AutoRefillError(exc.user_message) from exc
    AutoRefill.objects.filter(pk=autorefill.pk).update(
        stripe_customer_id=customer, stripe_setup_intent_id=setup.id
    )
    autorefill.stripe_customer_id, autorefill.stripe_setup_intent_id = customer, setup.id
    return autorefill, setup.client_secret, quote


def _pack(record, tier_id) -> PackageTier:
    try:
        wanted = int(tier_id)
    except (TypeError, ValueError):
        wanted = None
    for tier in packs_for(record):
        if tier.pk == wanted:
            return tier
    raise AutoRefillError("Please choose one of the packs offered for this prescription.")


def consent_text(autorefill: AutoRefill, *, what: str) -> str:
    """The terms in words, as the opt-in page shows them and the record keeps them."""
    from django.template.loader import render_to_string

    return render_to_string(
        "prescriptions/autorefill/_consent.txt",
        {
            "autorefill": autorefill,
            "what": what,
            "notice_days": rules.notice_days(),
            "until": rules.consent_until(timezone.localdate()),
        },
    ).strip()


def what_text(autorefill: AutoRefill) -> str:
    record, tier = autorefill.prescription, autorefill.tier
    return f"{record.medicine} {record.strength}, one pack of {tier.quantity}"


def autorefill_confirm(
    *, user, record_id, setup_intent_id: str, today: date | None = None
) -> AutoRefill:
    """Step two: Stripe says the card is saved; record the consent and turn auto-refill on.

    The card's ids, brand and last four digits are all the shop keeps. Idempotent: a second
    confirmation of the same SetupIntent finds auto-refill already on.
    """
    today = today or timezone.localdate()
    record = own_record(user=user, record_id=record_id)
    autorefill = autorefill_for(record)
    if autorefill is None or not setup_intent_id:
        raise AutoRefillError("Please start again: no card is being saved for this prescription.")
    if autorefill.is_active and autorefill.stripe_setup_intent_id == setup_intent_id:
        return autorefill
    if autorefill.stripe_setup_intent_id != setup_intent_id:
        raise AutoRefillError("Please start again: this card setup belongs to another attempt.")
    try:
        card = gateway.saved_card_from_setup_intent(
            setup_intent_id=setup_intent_id, customer_id=autorefill.stripe_customer_id
        )
    except gateway.PaymentGatewayError as exc:
        raise AutoRefillError(exc.user_message) from exc
    with transaction.atomic():
        record = PrescriptionOnFile.objects.select_for_update().get(pk=record.pk)
        autorefill = AutoRefill.objects.select_for_update().get(pk=autorefill.pk)
        reason = rules.refusal(record, tier=autorefill.tier, today=today)
        if reason:
            audit(record.pk, "refused", f"Opt-in refused: {reason}", by=user)
            raise AutoRefillError(reason)
        autorefill.stripe_payment_method_id = card.payment_method_id
        autorefill.card_brand = card.brand[:20]
        autorefill.card_last4 = card.last4[:4]
        autorefill.consent_at = timezone.now()
        autorefill.consent_until = rules.consent_until(today)
        autorefill.consent_text = consent_text(autorefill, what=what_text(autorefill))
        autorefill.next_due_on = rules.earliest_due(record, today=today)
        autorefill.status, autorefill.pause_reason = Status.ACTIVE, ""
        autorefill.noticed_for = None
        autorefill.save()
        audit(
            record.pk,
            "opted_in",
            f"Auto-refill turned on; consent recorded until {autorefill.consent_until:%B %-d, %Y}.",
            by=user,
            card=f"{card.brand} {card.last4}",
            next_due_on=autorefill.next_due_on,
            consent=autorefill.consent_text,
        )
        emails.started(
            autorefill, consent=consent_text(autorefill, what=emails.public_what(autorefill))
        )
    return autorefill


# --- The patient's changes: skip, date, pause, resume, stop --------------------------------------


def _locked(autorefill_id) -> AutoRefill:
    return (
        AutoRefill.objects.select_for_update(of=("self",))
        .select_related("prescription", "tier")
        .get(pk=autorefill_id)
    )


def autorefill_skip(*, autorefill_id, due_on: date, by=None) -> AutoRefill:
    """Skip the fill due on ``due_on``: the next one is one supply of the pack later."""
    with transaction.atomic():
        autorefill = _locked(autorefill_id)
        _require_current(autorefill, due_on)
        new = rules.due_after_skip(autorefill.prescription, autorefill.tier, due_on=due_on)
        autorefill.next_due_on, autorefill.noticed_for = new, None
        autorefill.save(update_fields=["next_due_on", "noticed_for", "updated_at"])
        audit(
            autorefill.prescription_id,
            "skipped",
            f"The refill due {due_on:%B %-d, %Y} was skipped; next due {new:%B %-d, %Y}.",
            by=by,
            skipped=due_on,
            next_due_on=new,
        )
    return autorefill


def autorefill_change_date(
    *, autorefill_id, due_on: date, new_date: date, by=None, today: date | None = None
) -> AutoRefill:
    today = today or timezone.localdate()
    with transaction.atomic():
        autorefill = _locked(autorefill_id)
        _require_current(autorefill, due_on)
        reason = rules.date_change_refusal(
            autorefill.prescription,
            current=due_on,
            wanted=new_date,
            until=autorefill.consent_until,
            today=today,
        )
        if reason:
            raise AutoRefillError(reason)
        autorefill.next_due_on, autorefill.noticed_for = new_date, None
        autorefill.save(update_fields=["next_due_on", "noticed_for", "updated_at"])
        audit(
            autorefill.prescription_id,
            "date_changed",
            f"Due date moved from {due_on:%B %-d, %Y} to {new_date:%B %-d, %Y}.",
            by=by,
            before=due_on,
            after=new_date,
        )
    return autorefill


def _require_current(autorefill: AutoRefill, due_on: date) -> None:
    if not autorefill.is_active:
        raise AutoRefillError("Auto-refill is not on for this prescription.")
    if autorefill.next_due_on != due_on:
        raise AutoRefillError(
            f"This link was for the refill due {due_on:%B %-d, %Y}; the next one is now due "
            f"{autorefill.next_due_on:%B %-d, %Y}. Please use your account to change it."
        )


def autorefill_pause(*, autorefill_id, by=None, due_on: date | None = None) -> AutoRefill:
    """The patient pauses auto-refill (from the account or the notice's link)."""
    with transaction.atomic():
        autorefill = _locked(autorefill_id)
        if due_on is not None:
            _require_current(autorefill, due_on)
        if autorefill.status == Status.ACTIVE:
            _pause_locked(autorefill, PauseReason.PATIENT, note="Paused by the patient.", by=by)
    return autorefill


def autorefill_resume(
    *, autorefill_id, shown_total: str, by=None, today: date | None = None
) -> AutoRefill:
    """Turn a paused auto-refill back on with the saved card, if the consent and the
    prescription still allow it; the due date is never before the too-soon date. The price
    now must be the one the patient's button showed (``shown_total``), else nothing changes."""
    today = today or timezone.localdate()
    with transaction.atomic():
        autorefill = _locked(autorefill_id)
        record = PrescriptionOnFile.objects.select_for_update().get(pk=autorefill.prescription_id)
        if autorefill.status != Status.PAUSED or not autorefill.stripe_payment_method_id:
            raise AutoRefillError("Please turn auto-refill on again with a card.")
        if autorefill.pause_reason in (PauseReason.DECLINED, PauseReason.AUTHENTICATION):
            raise AutoRefillError("Please save a card again: the last one was not accepted.")
        if not rules.consent_valid(until=autorefill.consent_until, today=today):
            raise AutoRefillError(
                "Your yearly consent has run out: please turn auto-refill on again."
            )
        reason = rules.refusal(record, tier=autorefill.tier, today=today)
        if reason:
            raise AutoRefillError(reason)
        autorefill.next_due_on = max(
            rules.earliest_due(record, today=today), autorefill.next_due_on or today
        )
        quote = autorefill_quote(autorefill=autorefill, due_on=autorefill.next_due_on)
        if quote.total != shown_total:
            raise AutoRefillError(
                f"The price of a refill is now {quote.total}; please look at it and try again."
            )
        autorefill.status, autorefill.pause_reason, autorefill.noticed_for = Status.ACTIVE, "", None
        autorefill.save()
        audit(
            record.pk,
            "resumed",
            "Auto-refill turned back on.",
            by=by,
            next_due_on=autorefill.next_due_on,
        )
    return autorefill


def autorefills_stop_for_account(*, user) -> int:
    """The account is being closed: every auto-refill of it stops (in the caller's
    transaction), and the saved cards are removed at Stripe once that commits."""
    ids = list(
        AutoRefill.objects.filter(user=user)
        .exclude(status=Status.STOPPED)
        .values_list("pk", flat=True)
    )
    for autorefill_id in ids:
        autorefill_stop(autorefill_id=autorefill_id, by=None, note="Account closed.")
    return len(ids)


def autorefill_stop(*, autorefill_id, by=None, note: str = "") -> AutoRefill:
    """Stop auto-refill and withdraw the consent; the saved card is removed at Stripe once the
    stop commits (best effort: the shop never uses it again either way)."""
    with transaction.atomic():
        autorefill = _locked(autorefill_id)
        method = autorefill.stripe_payment_method_id
        autorefill.status, autorefill.pause_reason = Status.STOPPED, ""
        autorefill.stripe_payment_method_id = ""
        autorefill.next_due_on = None
        autorefill.save()
        audit(
            autorefill.prescription_id,
            "stopped",
            f"Auto-refill stopped; consent withdrawn. {note}".strip(),
            by=by,
        )
        if method:
            transaction.on_commit(lambda: _forget_card(autorefill.pk, method))
    return autorefill


def _forget_card(autorefill_id: int, method: str) -> None:
    try:
        gateway.detach_payment_method(payment_method_id=method)
    except gateway.PaymentGatewayError:
        logger.warning("Could not remove saved card of auto-refill %s at Stripe", autorefill_id)


def autorefill_cancel_order(*, user, order_number) -> Order:
    """The patient cancels an auto-refill order before it is dispensed: the hold is released,
    nothing is charged (refused once the pharmacist has approved and captured it)."""
    run = (
        AutoRefillRun.objects.select_related("order", "autorefill")
        .filter(order__number=order_number, autorefill__user=user)
        .first()
    )
    if run is None:
        raise AutoRefillError("No such auto-refill order.")
    try:
        order = order_services.order_cancel_by_customer(
            order=run.order, user=user, reason="Auto-refill order canceled by the patient."
        )
    except order_services.OrderError as exc:
        raise AutoRefillError(exc.message) from exc
    with transaction.atomic():
        AutoRefillRun.objects.filter(pk=run.pk).update(outcome=AutoRefillRun.Outcome.CANCELED)
        audit(
            run.autorefill.prescription_id,
            "order_canceled",
            f"Auto-refill order {order.number} canceled by the patient; hold released, nothing charged.",
            by=user,
            order=order,
        )
    return order


# --- Pausing and telling the patient --------------------------------------------------------------


def _pause_locked(autorefill: AutoRefill, reason: str, *, note: str, by=None, notify=False) -> None:
    autorefill.status, autorefill.pause_reason = Status.PAUSED, reason
    autorefill.save(update_fields=["status", "pause_reason", "updated_at"])
    audit(autorefill.prescription_id, "paused", note, by=by, reason=reason)
    if notify:
        emails.paused(autorefill, reason=reason)
    if reason == PauseReason.NO_REFILLS:
        renewal_hook(autorefill.prescription, by=by)


def renewal_hook(record, *, by=None) -> None:
    """No refills left: ask the prescriber for a renewal through the renewal request service
    (``AUTOREFILL_RENEWAL_REQUEST``, by default ``prescriptions.renewals.renewal_request_start``,
    called with ``prescription=`` and ``by=None``: the shop asks, not a person). Until that
    service exists the patient's email says to ask the prescriber for a new prescription."""
    path = getattr(settings, "AUTOREFILL_RENEWAL_REQUEST", "")
    try:
        request_renewal = import_string(path) if path else None
    except ImportError:
        request_renewal = None
    if request_renewal is None:
        logger.info("No renewal request service (%r); prescription %s not renewed", path, record.pk)
        return
    try:
        request_renewal(prescription=record, by=None)
    except Exception:  # a failed renewal request must not undo the pause; staff see the log
        logger.exception("Renewal request for prescription on file %s failed", record.pk)
    else:
        audit(record.pk, "renewal_requested", "A renewal was requested from the prescriber.")


# --- The job: notices and placements ----------------------------------------------------------------


def autorefills_run(*, today: date | None = None) -> dict:
    """The beat task's work: lapse expired consents, send notices, place what is due."""
    today = today or timezone.localdate()
    return {
        "notices": autorefill_notices_send(today=today),
        "placed": autorefills_place_due(today=today),
    }


def autorefill_notices_send(*, today: date | None = None) -> int:
    """One notice per due date, ``notice_days`` before it (or at once when opted in later)."""
    today = today or timezone.localdate()
    horizon = today + timedelta(days=rules.notice_days())
    ids = list(
        AutoRefill.objects.filter(
            status=Status.ACTIVE, next_due_on__gt=today, next_due_on__lte=horizon
        ).values_list("pk", flat=True)
    )
    sent = 0
    for autorefill_id in ids:
        with transaction.atomic():
            autorefill = (
                AutoRefill.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("prescription__dosage__product", "tier", "user")
                .filter(pk=autorefill_id, status=Status.ACTIVE)
                .first()
            )
            if autorefill is None or autorefill.noticed_for == autorefill.next_due_on:
                continue
            due = max(
                autorefill.next_due_on, rules.earliest_due(autorefill.prescription, today=today)
            )
            # Checked as of the due date: a consent or a prescription that ends before it
            # pauses now, and the patient hears it with time to act instead of a notice.
            if _lapse_or_refuse(autorefill, today=due):
                continue
            try:
                quote = autorefill_quote(autorefill=autorefill, due_on=due)
            except AutoRefillError as exc:
                _pause_locked(autorefill, PauseReason.UNAVAILABLE, note=exc.message, notify=True)
                continue
            autorefill.next_due_on, autorefill.noticed_for = due, due
            autorefill.save(update_fields=["next_due_on", "noticed_for", "updated_at"])
            emails.notice(autorefill, quote=quote)
            audit(
                autorefill.prescription_id,
                "noticed",
                f"Notice sent: refill due {due:%B %-d, %Y}, hold of {quote.total}.",
                due_on=due,
                total=quote.total,
            )
            sent += 1
    return sent


def _lapse_or_refuse(autorefill: AutoRefill, *, today: date) -> bool:
    """Pause (and tell the patient) when the consent has lapsed or the prescription can no
    longer be refilled. True when paused. The caller holds the auto-refill's lock."""
    record = autorefill.prescription
    if not rules.consent_valid(until=autorefill.consent_until, today=today):
        _pause_locked(
            autorefill,
            PauseReason.CONSENT_EXPIRED,
            note=f"Consent lapsed after {autorefill.consent_until:%B %-d, %Y}.",
            notify=True,
        )
        return True
    if rules.is_controlled(record):
        _pause_locked(autorefill, PauseReason.CONTROLLED, note="Controlled substance.", notify=True)
        return True
    checks_reason = rules.refusal(record, tier=autorefill.tier, today=today)
    if checks_reason:
        expired = record.expires_on < today
        reason = PauseReason.EXPIRED if expired else PauseReason.NO_REFILLS
        _pause_locked(autorefill, reason, note=checks_reason, notify=True)
        return True
    return False


def autorefills_place_due(*, today: date | None = None) -> int:
    """Place every refill due by ``today``; returns how many orders were placed."""
    today = today or timezone.localdate()
    ids = list(
        AutoRefill.objects.filter(status=Status.ACTIVE, next_due_on__lte=today).values_list(
            "pk", flat=True
        )
    )
    return sum(
        1 for autorefill_id in ids if autorefill_place(autorefill_id=autorefill_id, today=today)
    )


def autorefill_place(*, autorefill_id, today: date | None = None) -> Order | None:
    """Place one due refill: claim, then order, then record. Returns the order (None if not).

    The claim (a run row unique per due date, written under the auto-refill's lock taken with
    SKIP LOCKED) commits before any call to Stripe: no network call holds the lock, and a second
    job run finds the row locked or the claim made, and places nothing.
    """
    today = today or timezone.localdate()
    claim = _claim(autorefill_id, today=today)
    if claim is None:
        return None
    run, autorefill = claim
    try:
        placed = order_place(
            cart=autorefill.cart,
            email=autorefill.user.email,
            address=Address(
                name=autorefill.ship_name,
                line1=autorefill.ship_line1,
                line2=autorefill.ship_line2,
                city=autorefill.ship_city,
                state=autorefill.ship_state,
                zip_code=autorefill.ship_zip,
            ),
            shipping_method=autorefill.shipping_method,
            user=autorefill.user,
            shown_figures=autorefill.quoted_figures,
            saved_card=order_services.SavedCardPayment(
                customer_id=autorefill.stripe_customer_id,
                payment_method_id=autorefill.stripe_payment_method_id,
            ),
        )
    except CheckoutChanged:
        return _refused(run, PauseReason.PRICE_CHANGED, "The price changed since the notice.")
    except RefillError as exc:  # the refill checkout's own checks refused it (rolled back)
        return _refused(run, PauseReason.UNAVAILABLE, exc.message)
    except order_services.OrderError as exc:
        if exc.code == order_services.AUTHENTICATION_REQUIRED:
            return _refused(run, PauseReason.AUTHENTICATION, exc.message)
        if exc.code:
            return _refused(run, PauseReason.DECLINED, exc.message)
        if isinstance(exc.__cause__, gateway.PaymentGatewayError):
            return _retry_later(run, exc.message)  # Stripe unreachable: the next run tries again
        return _refused(run, PauseReason.UNAVAILABLE, exc.message)
    except Exception:
        _retry_later(run, "unexpected error")
        raise
    _placed(run, placed.order, today=today)
    return placed.order


def _claim(autorefill_id, *, today: date) -> tuple[AutoRefillRun, AutoRefill] | None:
    with transaction.atomic():
        autorefill = (
            AutoRefill.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("prescription__dosage__product", "tier", "user", "cart")
            .filter(pk=autorefill_id, status=Status.ACTIVE, next_due_on__lte=today)
            .first()
        )
        if autorefill is None:
            return None  # another run holds it, or it is no longer due
        record = PrescriptionOnFile.objects.select_for_update().get(pk=autorefill.prescription_id)
        autorefill.prescription = record
        if _lapse_or_refuse(autorefill, today=today):
            return None
        earliest = rules.earliest_due(record, today=today)
        if earliest > today:
            # Never before the too-soon date: the last fill was counted later than expected.
            _move(autorefill, earliest, note="Not yet allowed by the too-soon rule")
            return None
        if OrderRefill.objects.filter(
            prescription=record, order__status__in=OPEN_ORDER_STATUSES
        ).exists():
            return None  # a refill of it is still with the pharmacist: wait for that one
        due = autorefill.next_due_on
        run, created = AutoRefillRun.objects.get_or_create(autorefill=autorefill, due_on=due)
        if not created and run.outcome == AutoRefillRun.Outcome.REFUSED:
            # Refused, which paused it; active again means the patient resumed it since.
            run.outcome, run.note = AutoRefillRun.Outcome.PLACING, ""
            run.save(update_fields=["outcome", "note", "updated_at"])
        elif not created and not _abandoned(run):
            return None  # placed, canceled, or being placed by another run right now
        elif not created:
            run.save(update_fields=["updated_at"])  # taken over from a run that died
        _cart_with_pack(autorefill)
        audit(record.pk, "placing", f"Placing the refill due {due:%B %-d, %Y}.", due_on=due)
    return run, autorefill


#: A claim still "placing" this long after it was made belongs to a run that died mid-way.
ABANDONED_AFTER = timedelta(minutes=15)


def _abandoned(run: AutoRefillRun) -> bool:
    return (
        run.outcome == AutoRefillRun.Outcome.PLACING
        and run.order_id is None
        and run.updated_at < timezone.now() - ABANDONED_AFTER
    )


def _move(autorefill: AutoRefill, to: date, *, note: str) -> None:
    before = autorefill.next_due_on
    autorefill.next_due_on = to
    autorefill.save(update_fields=["next_due_on", "updated_at"])
    audit(
        autorefill.prescription_id,
        "date_moved",
        f"{note}: due date moved from {before:%B %-d, %Y} to {to:%B %-d, %Y}.",
        before=before,
        after=to,
    )


def _placed(run: AutoRefillRun, order: Order, *, today: date) -> None:
    with transaction.atomic():
        autorefill = _locked(run.autorefill_id)
        AutoRefillRun.objects.filter(pk=run.pk).update(
            outcome=AutoRefillRun.Outcome.PLACED, order=order, note=""
        )
        new = rules.due_after_placement(autorefill.prescription, autorefill.tier, placed_on=today)
        autorefill.next_due_on, autorefill.noticed_for = new, None
        autorefill.save(update_fields=["next_due_on", "noticed_for", "updated_at"])
        audit(
            autorefill.prescription_id,
            "placed",
            f"Refill order {order.number} placed off-session for {format_money(order.total)}; "
            f"with the pharmacist. Next due {new:%B %-d, %Y}.",
            order=order,
            next_due_on=new,
        )


def _refused(run: AutoRefillRun, reason: str, message: str) -> None:
    with transaction.atomic():
        autorefill = _locked(run.autorefill_id)
        AutoRefillRun.objects.filter(pk=run.pk).update(
            outcome=AutoRefillRun.Outcome.REFUSED, note=message[:500]
        )
        if autorefill.is_active:
            _pause_locked(autorefill, reason, note=f"Refill not placed: {message}", notify=True)


def _retry_later(run: AutoRefillRun, message: str) -> None:
    """Stripe or the broker could not be reached: the claim is let go, the next run tries again."""
    logger.warning("Auto-refill %s not placed, retried later: %s", run.autorefill_id, message)
    AutoRefillRun.objects.filter(pk=run.pk, order__isnull=True).delete()
