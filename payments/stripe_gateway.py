"""The shop's only door to Stripe: every call to the ``stripe`` library goes through here.

Keeping it in one module means one place decides what leaves the shop. PaymentIntents carry the
order id and number as metadata and nothing else: no description, no product, no statement
descriptor, because a card statement or a Stripe dashboard must never reveal a medicine.
Every write sends an idempotency key derived from the order, so a retried call (ours or the
library's network retries) never charges, captures, cancels or refunds twice.

``settings.STRIPE_API_BASE`` points the real library at localstripe in the demo and the tests;
left empty, the same code talks to Stripe.

Every call is bounded: ``STRIPE_TIMEOUT_SECONDS`` per attempt (connect and read) and
``STRIPE_MAX_NETWORK_RETRIES`` retries of a failed connection (the library retries writes with
the same idempotency key, so a retry is never a second charge). A hanging Stripe therefore costs
a request at most ``(1 + retries) × timeout`` plus the library's short back-off, well under the
web worker's timeout; the caller then gets a ``PaymentGatewayError`` with a message to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import stripe
from django.conf import settings

STRIPE_DEFAULT_API_BASE = "https://api.stripe.com"


class PaymentGatewayError(Exception):
    """Stripe refused or could not be reached. ``user_message`` is safe to show a customer;
    ``code`` is Stripe's error code, e.g. ``resource_missing`` for a PaymentIntent it does not know."""

    def __init__(
        self,
        message: str,
        *,
        user_message: str | None = None,
        code: str = "",
        declined: bool = False,
    ):
        super().__init__(message)
        self.user_message = (
            user_message
            or "Our payment provider could not be reached. Please try again in a moment."
        )
        self.code = code
        # The card itself said no (a CardError): trying again later with it will not help.
        self.declined = declined


class WebhookSignatureError(Exception):
    pass


class WebhookPayloadError(Exception):
    """Stripe's signature is valid but the body is not a well-formed event (kept, answered 400)."""


@dataclass(frozen=True)
class PaymentIntentState:
    """What the shop needs to know about a PaymentIntent, as Stripe reports it now."""

    id: str
    status: str
    amount: int
    amount_capturable: int
    amount_received: int
    currency: str
    client_secret: str
    metadata: dict
    last_error_message: str
    latest_charge_id: str
    amount_refunded: int = 0  # on the charge, as Stripe counts it
    charge_amount: int = 0
    charge_amount_captured: int | None = None  # localstripe does not report it
    # The card it was paid with, for the receipt: brand ("visa") and last four digits, or "".
    card_brand: str = ""
    card_last4: str = ""

    @property
    def captured_minor(self) -> int:
        """What was taken from the card (localstripe reports neither amount_received nor amount_captured)."""
        return self.amount_received or self.charge_amount_captured or self.amount

    def refunded_minor(self, *, captured_minor: int) -> int:
        """Money given back to the customer. Stripe releases the uncaptured part of a partial
        capture; localstripe books it as a refund, which is not money the customer got back."""
        if self.charge_amount_captured is not None:
            return self.amount_refunded
        return max(0, self.amount_refunded - max(0, self.charge_amount - captured_minor))


def _configure() -> None:
    stripe.api_key = settings.STRIPE_SECRET_KEY
    stripe.api_base = settings.STRIPE_API_BASE or STRIPE_DEFAULT_API_BASE
    stripe.max_network_retries = settings.STRIPE_MAX_NETWORK_RETRIES
    timeout = float(settings.STRIPE_TIMEOUT_SECONDS)
    client = stripe.default_http_client
    if (
        not isinstance(client, stripe.RequestsClient)
        or getattr(client, "_timeout", None) != timeout
    ):
        # The library's default waits 80 s for an answer: longer than a web worker lives.
        stripe.default_http_client = stripe.RequestsClient(timeout=timeout)


def _wrap(exc: stripe.StripeError) -> PaymentGatewayError:
    if isinstance(exc, stripe.CardError):
        return PaymentGatewayError(
            str(exc),
            user_message=exc.user_message or "Your card was declined.",
            code=exc.code or "",
            declined=True,
        )
    code = getattr(exc, "code", "") or ""
    if not code and isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        code = "resource_missing"  # Stripe's code for an unknown id (localstripe sends none)
    return PaymentGatewayError(f"{type(exc).__name__}: {exc}", code=code)


def _as_dict(obj) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})


#: Asked for on every read of an intent: its card (brand, last four) comes with it in one call.
EXPAND = ["payment_method"]


def _card(pi: dict) -> dict:
    """Brand and last four digits of the intent's card, when Stripe sent its payment method."""
    method = pi.get("payment_method")
    card = (method.get("card") if isinstance(method, dict) else None) or {}
    return {
        "card_brand": str(card.get("brand") or "")[:20],
        "card_last4": str(card.get("last4") or "")[-4:],
    }


def _state(pi) -> PaymentIntentState:
    pi = _as_dict(pi)
    error = pi.get("last_payment_error") or {}
    charge = pi.get("latest_charge")
    charge_id = charge if isinstance(charge, str) else (charge or {}).get("id", "")
    return PaymentIntentState(
        id=pi["id"],
        status=pi["status"],
        amount=int(pi.get("amount") or 0),
        amount_capturable=int(pi.get("amount_capturable") or 0),
        amount_received=int(pi.get("amount_received") or 0),
        currency=pi.get("currency") or "",
        client_secret=pi.get("client_secret") or "",
        metadata=dict(pi.get("metadata") or {}),
        last_error_message=(error.get("message") or "") if error else "",
        latest_charge_id=charge_id,
        **_card(pi),
    )


def create_payment_intent(
    *, amount_minor: int, currency: str, order_id: str, order_number: int, idempotency_key: str
) -> PaymentIntentState:
    """An authorisation hold (manual capture) for the order's total; nothing else is sent."""
    _configure()
    try:
        pi = stripe.PaymentIntent.create(
            amount=amount_minor,
            currency=currency.lower(),
            capture_method="manual",
            payment_method_types=["card"],
            metadata={"order_id": order_id, "order_number": str(order_number)},
            idempotency_key=idempotency_key,
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return _state(pi)


def retrieve_payment_intent(payment_intent_id: str) -> PaymentIntentState:
    _configure()
    try:
        pi = stripe.PaymentIntent.retrieve(payment_intent_id, expand=EXPAND)
        state = _state(pi)
        if state.latest_charge_id and state.status == "succeeded":
            # Refunds are counted on the charge; Stripe returns only its id on the intent.
            charge = _as_dict(stripe.Charge.retrieve(state.latest_charge_id))
            captured = charge.get("amount_captured")
            state = replace(
                state,
                amount_refunded=int(charge.get("amount_refunded") or 0),
                charge_amount=int(charge.get("amount") or 0),
                charge_amount_captured=None if captured is None else int(captured),
            )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return state


def capture_payment_intent(
    *, payment_intent_id: str, amount_minor: int | None, idempotency_key: str
) -> PaymentIntentState:
    _configure()
    params = {} if amount_minor is None else {"amount_to_capture": amount_minor}
    try:
        pi = stripe.PaymentIntent.capture(
            payment_intent_id, idempotency_key=idempotency_key, expand=EXPAND, **params
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return _state(pi)


def cancel_payment_intent(*, payment_intent_id: str, idempotency_key: str) -> PaymentIntentState:
    """Release the hold. An intent already canceled is reported as it is, not as an error."""
    _configure()
    try:
        pi = stripe.PaymentIntent.cancel(payment_intent_id, idempotency_key=idempotency_key)
    except stripe.StripeError as exc:
        current = retrieve_payment_intent(payment_intent_id)
        if current.status == "canceled":
            return current
        raise _wrap(exc) from exc
    return _state(pi)


def refund_payment_intent(
    *, payment_intent_id: str, amount_minor: int, order_id: str, idempotency_key: str
) -> tuple[str, int]:
    """Refund part or all of a captured payment; returns (refund id, amount in minor units).

    The staff member's reason stays in the shop: it may mention the medicine.
    """
    _configure()
    try:
        refund = stripe.Refund.create(
            payment_intent=payment_intent_id,
            amount=amount_minor,
            metadata={"order_id": order_id},
            idempotency_key=idempotency_key,
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return refund["id"], int(refund["amount"])


# --- Saved cards (auto-refill): a SetupIntent on session, then off-session PaymentIntents -----


@dataclass(frozen=True)
class SetupIntentState:
    id: str
    status: str
    client_secret: str
    customer: str
    payment_method: str
    last_error_message: str


@dataclass(frozen=True)
class SavedCard:
    """What the shop keeps of a saved card: Stripe's ids, the brand and the last four digits."""

    customer_id: str
    payment_method_id: str
    brand: str
    last4: str


def _setup_state(si) -> SetupIntentState:
    si = _as_dict(si)
    error = si.get("last_setup_error") or {}
    method = si.get("payment_method") or ""
    return SetupIntentState(
        id=si["id"],
        status=si["status"],
        client_secret=si.get("client_secret") or "",
        customer=si.get("customer") or "",
        payment_method=method if isinstance(method, str) else method.get("id", ""),
        last_error_message=(error.get("message") or "") if error else "",
    )


def create_customer(*, account_ref: str, idempotency_key: str) -> str:
    """A Stripe customer to save cards on: the shop's account number as metadata, nothing else."""
    _configure()
    try:
        customer = stripe.Customer.create(
            metadata={"account": account_ref}, idempotency_key=idempotency_key
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return customer["id"]


def create_setup_intent(
    *, customer_id: str, reference: str, idempotency_key: str
) -> SetupIntentState:
    """A SetupIntent the patient's browser confirms with the card (Stripe.js); for later
    off-session use. ``reference`` is the shop's own opaque reference, never a medicine."""
    _configure()
    try:
        si = stripe.SetupIntent.create(
            customer=customer_id,
            usage="off_session",
            payment_method_types=["card"],
            metadata={"reference": reference},
            idempotency_key=idempotency_key,
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return _setup_state(si)


def retrieve_setup_intent(setup_intent_id: str) -> SetupIntentState:
    _configure()
    try:
        return _setup_state(stripe.SetupIntent.retrieve(setup_intent_id))
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc


def demo_confirm_setup_intent(*, setup_intent_id: str, test_method: str = "pm_card_visa") -> None:
    """The demo only (``setup_demo_autorefill``): confirm a SetupIntent with one of Stripe's test
    payment methods, as the patient's browser would with a card. Refused outside test mode."""
    if not settings.STRIPE_SECRET_KEY.startswith("sk_test_"):
        raise PaymentGatewayError("Test payment methods are for test mode only.")
    _configure()
    try:
        stripe.SetupIntent.confirm(setup_intent_id, payment_method=test_method)
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc


def saved_card_from_setup_intent(*, setup_intent_id: str, customer_id: str) -> SavedCard:
    """The card a confirmed SetupIntent saved, attached to the customer (Stripe attaches it
    itself; localstripe does not, so it is attached here when it is not yet)."""
    _configure()
    try:
        si = _setup_state(stripe.SetupIntent.retrieve(setup_intent_id))
        if si.status != "succeeded" or not si.payment_method:
            raise PaymentGatewayError(
                f"SetupIntent {si.id} is {si.status}",
                user_message=si.last_error_message or "Your card could not be saved.",
                code="setup_incomplete",
                declined=True,
            )
        if si.customer and si.customer != customer_id:
            raise PaymentGatewayError(
                "SetupIntent of another customer", code="setup_incomplete", declined=True
            )
        method = _as_dict(stripe.PaymentMethod.retrieve(si.payment_method))
        if method.get("customer") != customer_id:
            method = _as_dict(
                stripe.PaymentMethod.attach(
                    si.payment_method,
                    customer=customer_id,
                    idempotency_key=f"{setup_intent_id}-attach",
                )
            )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    card = method.get("card") or {}
    return SavedCard(
        customer_id=customer_id,
        payment_method_id=method["id"],
        brand=str(card.get("brand") or "card"),
        last4=str(card.get("last4") or ""),
    )


def create_off_session_payment_intent(
    *,
    amount_minor: int,
    currency: str,
    order_id: str,
    order_number: int,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str,
) -> PaymentIntentState:
    """A card hold (manual capture) on a saved card, confirmed now without the patient present.

    The same metadata as ``create_payment_intent`` and nothing else. A decline raises
    ``PaymentGatewayError`` with ``declined=True`` (Stripe's ``card_declined``,
    ``authentication_required``...); a card that asks for authentication may instead come back
    as ``requires_action`` (localstripe does this), which the caller treats the same way.
    """
    _configure()
    try:
        pi = stripe.PaymentIntent.create(
            amount=amount_minor,
            currency=currency.lower(),
            capture_method="manual",
            payment_method_types=["card"],
            customer=customer_id,
            payment_method=payment_method_id,
            off_session=True,
            confirm=True,
            metadata={"order_id": order_id, "order_number": str(order_number)},
            idempotency_key=idempotency_key,
        )
    except stripe.StripeError as exc:
        raise _wrap(exc) from exc
    return _state(pi)


def detach_payment_method(*, payment_method_id: str) -> None:
    """Forget a saved card at Stripe (the patient stopped auto-refill). Already gone is fine."""
    _configure()
    try:
        stripe.PaymentMethod.detach(payment_method_id)
    except stripe.StripeError as exc:
        error = _wrap(exc)
        if error.code != "resource_missing":
            raise error from exc


def construct_webhook_event(*, payload: bytes, signature_header: str) -> dict:
    """Check Stripe's signature on a webhook delivery and return the event as a dict.

    Raises ``WebhookSignatureError`` when the delivery cannot be shown to come from Stripe, and
    ``WebhookPayloadError`` when it does but its body is not an event (not JSON, not an object,
    no string ``id`` or ``type``, no ``data.object``).
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookSignatureError("Webhook secret is not configured.")
    if not signature_header:
        raise WebhookSignatureError("Missing Stripe-Signature header.")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
    except ValueError as exc:  # a body that is not UTF-8 cannot be checked
        raise WebhookSignatureError(f"Invalid payload: {exc}") from exc
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(f"Invalid signature: {exc.user_message or exc}") from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise WebhookPayloadError(f"The body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise WebhookPayloadError("The body is not a JSON object.")
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise WebhookPayloadError("The event has no id.")
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise WebhookPayloadError("The event has no type.")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookPayloadError("The event has no data.object.")
    return event
