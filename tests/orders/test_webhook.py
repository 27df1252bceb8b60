"""The Stripe webhook: signed, logged once per event, acknowledged, acted on in a task (sync service)."""

import json
import time
from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from notifications.models import OutboundEmail
from orders import tasks
from orders.models import Order, OrderEvent, StripeEvent
from orders.state import OrderStatus, PaymentStatus
from tests.localstripe import CARD_DECLINED, CARD_OK, browser_confirm, sign_webhook
from tests.orders.conftest import make_cart, place

pytestmark = pytest.mark.django_db

URL = "/stripe/webhook/"


def event_for(order, event_type, *, event_id, obj=None) -> bytes:
    obj = obj or {
        "id": order.stripe_payment_intent_id,
        "object": "payment_intent",
        "metadata": {"order_id": str(order.id), "order_number": str(order.number)},
    }
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


def deliver(client, payload: bytes, signature: str | None = "sign", *, run_tasks: bool = True):
    """POST a delivery; the queued task runs once the (test) transaction would have committed."""
    headers = {}
    if signature == "sign":
        headers["HTTP_STRIPE_SIGNATURE"] = sign_webhook(payload)
    elif signature is not None:
        headers["HTTP_STRIPE_SIGNATURE"] = signature
    with TestCase.captureOnCommitCallbacks(execute=run_tasks):
        return client.post(URL, data=payload, content_type="application/json", **headers)


def test_route_name():
    assert reverse("orders:stripe_webhook") == URL


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


@pytest.mark.parametrize(
    "signature",
    [None, "t=1,v1=deadbeef", sign_webhook(b"other payload"), "garbage"],
    ids=["missing", "wrong-hmac", "other-payload", "garbage"],
)
def test_bad_or_missing_signature_is_refused_and_nothing_is_processed(
    localstripe, client, general_tier, signature
):
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    response = deliver(
        client,
        event_for(order, "payment_intent.amount_capturable_updated", event_id="evt_bad"),
        signature,
    )
    assert response.status_code == 400
    assert response.content  # a reason
    assert not StripeEvent.objects.exists()
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.PENDING


def test_signature_with_another_secret_is_refused(localstripe, client, general_tier):
    order = place(make_cart(tier=general_tier)).order
    payload = event_for(order, "payment_intent.succeeded", event_id="evt_x")
    response = deliver(client, payload, sign_webhook(payload, secret="whsec_someone_else"))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_authorised_event_moves_the_order_and_a_duplicate_delivery_is_acknowledged_once(
    localstripe, client, baclofen_90
):
    order = place(make_cart(tier=baclofen_90)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    payload = event_for(order, "payment_intent.amount_capturable_updated", event_id="evt_auth_1")
    assert deliver(client, payload).status_code == 200
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    events = order.events.count()

    second = deliver(client, payload)
    assert second.status_code == 200 and b"Already processed" in second.content
    record = StripeEvent.objects.get()
    assert (record.event_id, record.type, record.processed, record.error) == (
        "evt_auth_1",
        "payment_intent.amount_capturable_updated",
        True,
        "",
    )
    assert record.payload["data"]["object"]["id"] == order.stripe_payment_intent_id
    assert order.events.count() == events


def test_out_of_order_events_end_in_the_same_state(localstripe, client, general_tier):
    """succeeded arrives before amount_capturable_updated: the order reads Stripe, not the event."""
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    assert (
        deliver(client, event_for(order, "payment_intent.succeeded", event_id="evt_2")).status_code
        == 200
    )
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    events = order.events.count()
    assert (
        deliver(
            client, event_for(order, "payment_intent.amount_capturable_updated", event_id="evt_1")
        ).status_code
        == 200
    )
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert order.events.count() == events
    assert StripeEvent.objects.filter(processed=True).count() == 2


def test_payment_failed_event(localstripe, client, general_tier):
    cart = make_cart(tier=general_tier)
    order = place(cart).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_DECLINED
    )
    assert (
        deliver(
            client, event_for(order, "payment_intent.payment_failed", event_id="evt_f")
        ).status_code
        == 200
    )
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.PENDING_PAYMENT,
        PaymentStatus.FAILED,
    )
    assert cart.lines.exists()


def test_canceled_and_refunded_events_found_by_payment_intent(
    localstripe, client, general_tier, django_user_model
):
    """charge.refunded carries the charge, not our metadata: the order is found by its PaymentIntent."""
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    deliver(client, event_for(order, "payment_intent.succeeded", event_id="evt_s"))
    # A refund made in the Stripe dashboard, outside the shop:
    import stripe

    stripe.api_base, stripe.api_key = localstripe.base, "sk_test_dashboard"
    stripe.Refund.create(payment_intent=order.stripe_payment_intent_id, amount=500)
    charge = {
        "id": "ch_x",
        "object": "charge",
        "payment_intent": order.stripe_payment_intent_id,
        "metadata": {},
    }
    assert (
        deliver(
            client, event_for(order, "charge.refunded", event_id="evt_r", obj=charge)
        ).status_code
        == 200
    )
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.PARTIALLY_REFUNDED
    assert str(order.amount_refunded.amount) == "5.00"

    other = place(make_cart(tier=general_tier)).order
    stripe.PaymentIntent.cancel(other.stripe_payment_intent_id)
    assert (
        deliver(client, event_for(other, "payment_intent.canceled", event_id="evt_c")).status_code
        == 200
    )
    other.refresh_from_db()
    assert (other.status, other.payment_status) == (OrderStatus.CANCELED, PaymentStatus.CANCELED)


def test_unhandled_and_unknown_events_are_logged_and_acknowledged(localstripe, client):
    payload = json.dumps(
        {"id": "evt_u", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    ).encode()
    assert deliver(client, payload).status_code == 200
    assert StripeEvent.objects.get().processed


def test_a_failure_leaves_the_log_row_with_its_error_and_a_retry_succeeds(
    localstripe, client, general_tier, settings
):
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    payload = event_for(order, "payment_intent.amount_capturable_updated", event_id="evt_retry")
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # Stripe unreachable while we process
    response = deliver(client, payload)
    assert response.status_code == 200  # acknowledged: Stripe's outage is ours to retry
    record = StripeEvent.objects.get()
    assert not record.processed and "PaymentGatewayError" in record.error
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.PENDING  # nothing half-done

    settings.STRIPE_API_BASE = localstripe.base  # Stripe delivers the event again later
    assert deliver(client, payload).status_code == 200
    record.refresh_from_db()
    order.refresh_from_db()
    assert record.processed and record.error == ""
    assert order.payment_status == PaymentStatus.CAPTURED
    assert (
        Order.objects.count() == 1
        and OrderEvent.objects.filter(order=order, to_status="captured").count() == 1
    )


def test_the_answer_comes_before_any_stripe_call_or_email(
    localstripe, client, general_tier, settings
):
    """Stripe unreachable and the task not yet run: the delivery is still recorded and acknowledged."""
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    emails = OutboundEmail.objects.count()
    payload = event_for(order, "payment_intent.succeeded", event_id="evt_fast")
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        response = deliver(client, payload, run_tasks=False)
    assert (response.status_code, response.content) == (200, b"Queued.")
    assert len(queued) == 1  # the processing task, queued after commit
    record = StripeEvent.objects.get()
    assert (record.event_id, record.processed) == ("evt_fast", False)
    order.refresh_from_db()
    assert order.payment_status == PaymentStatus.PENDING and OutboundEmail.objects.count() == emails

    settings.STRIPE_API_BASE = localstripe.base
    queued[0]()  # the worker runs the task
    record.refresh_from_db()
    order.refresh_from_db()
    assert record.processed and order.payment_status == PaymentStatus.CAPTURED
    assert OutboundEmail.objects.count() > emails  # the confirmation, written by the task


def test_the_periodic_retry_processes_events_left_unprocessed(
    localstripe, client, general_tier, settings
):
    order = place(make_cart(tier=general_tier)).order
    browser_confirm(
        base=localstripe.base, intent_id=order.stripe_payment_intent_id, card_number=CARD_OK
    )
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    deliver(client, event_for(order, "payment_intent.succeeded", event_id="evt_sweep"))
    assert not StripeEvent.objects.get().processed
    settings.STRIPE_API_BASE = localstripe.base
    assert tasks.retry_stripe_events() == 0  # too fresh: its own retries may still be on the way
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    assert tasks.retry_stripe_events() == 1
    order.refresh_from_db()
    assert StripeEvent.objects.get().processed and order.payment_status == PaymentStatus.CAPTURED
    assert tasks.retry_stripe_events() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        b'{"id": "evt_no_type", "data": {"object": {}}}',
        b'{"id": 7, "type": "payment_intent.succeeded", "data": {"object": {}}}',
        b'{"id": "evt_no_data", "type": "payment_intent.succeeded"}',
        b'{"id": "evt_bad_data", "type": "payment_intent.succeeded", "data": {"object": [1]}}',
        b'{"type": "payment_intent.succeeded", "data": {"object": {}}}',
        b'{"id": "evt_nul\\u0000", "type": "x\\u0000", "data": null}',
        b'\x00{"id": "evt_raw_nul"}',
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "no-type",
        "numeric-id",
        "no-data",
        "object-not-dict",
        "no-id",
        "nul",
        "raw-nul",
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused_and_kept(client, body, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_pharmacy_tests"
    response = deliver(client, body)
    assert response.status_code == 400
    assert b"Not a well-formed event" in response.content
    record = StripeEvent.objects.get()
    assert record.type == "(malformed)" and record.error
    assert record.payload["body"] == body.decode().replace("\x00", "\ufffd")
    assert record.payload["length"] == len(body)
    assert (
        deliver(client, body).status_code == 400 and StripeEvent.objects.count() == 1
    )  # kept once


def test_an_unsigned_body_that_is_not_an_event_is_refused_and_not_kept(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_pharmacy_tests"
    assert deliver(client, b"not json", signature="t=1,v1=deadbeef").status_code == 400
    assert not StripeEvent.objects.exists()


def _signed_event(*, event_id: str, event_type: str, obj: dict | None = None) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj or {}}}
    ).encode()


@pytest.mark.parametrize(
    "body, reason",
    [
        (
            _signed_event(event_id="evt_" + "x" * 252, event_type="charge.updated"),
            b"id is 256 characters long; at most 255",
        ),
        (
            _signed_event(event_id="evt_long_type", event_type="t" * 101),
            b"type is 101 characters long; at most 100",
        ),
        (
            _signed_event(
                event_id="evt_nul", event_type="charge.updated", obj={"description": "a\x00b"}
            ),
            b"NUL",
        ),
    ],
    ids=["id-256", "type-101", "nul-in-data"],
)
def test_a_signed_event_the_log_cannot_hold_is_refused_with_the_reason_and_not_kept(
    client, settings, body, reason
):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_pharmacy_tests"
    response = deliver(client, body)
    assert response.status_code == 400
    assert b"Event not accepted" in response.content and reason in response.content
    assert not StripeEvent.objects.exists()


def test_a_signed_event_at_the_limits_is_kept_and_acknowledged(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_pharmacy_tests"
    longest = "evt_" + "x" * 251
    response = deliver(client, _signed_event(event_id=longest, event_type="t" * 100))
    assert response.status_code == 200
    assert StripeEvent.objects.get().event_id == longest
