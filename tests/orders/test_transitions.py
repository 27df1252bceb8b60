import pytest
from djmoney.money import Money

from orders.models import Order, OrderEvent, OrderNumber
from orders.services import InvalidTransition, order_transition
from orders.state import ORDER_TRANSITIONS, PAYMENT_TRANSITIONS, OrderStatus, PaymentStatus


def _order(**kwargs) -> Order:
    defaults = {
        "number": OrderNumber.objects.create().number,
        "email": "a@example.com",
        "ship_name": "A",
        "ship_line1": "1 St",
        "ship_city": "Albany",
        "ship_state": "NY",
        "ship_zip": "12207",
        "shipping_method": "standard",
        "subtotal": Money(10, "USD"),
        "savings": Money(0, "USD"),
        "shipping": Money(0, "USD"),
        "total": Money(10, "USD"),
    }
    defaults.update(kwargs)
    return Order.objects.create(**defaults)


@pytest.mark.django_db
def test_order_numbers_start_at_10001_and_never_repeat():
    numbers = [_order().number for _ in range(3)]
    assert numbers[0] >= 10001
    assert len(set(numbers)) == 3 and numbers == sorted(numbers)


@pytest.mark.django_db
def test_every_allowed_move_is_recorded_as_an_event():
    order = _order()
    order_transition(order=order, to=OrderStatus.AWAITING_REVIEW, note="rx")
    order_transition(order=order, to=PaymentStatus.AUTHORIZED, field="payment_status")
    order.refresh_from_db()
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    events = list(order.events.values_list("kind", "from_status", "to_status"))
    assert events == [
        (OrderEvent.Kind.STATUS, "pending_payment", "awaiting_review"),
        (OrderEvent.Kind.PAYMENT, "pending", "authorized"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "start", "to"),
    [
        ("status", OrderStatus.PENDING_PAYMENT, OrderStatus.SHIPPED),
        ("status", OrderStatus.SHIPPED, OrderStatus.CANCELED),
        ("status", OrderStatus.CANCELED, OrderStatus.READY_TO_SHIP),
        ("payment_status", PaymentStatus.PENDING, PaymentStatus.REFUNDED),
        ("payment_status", PaymentStatus.CANCELED, PaymentStatus.CAPTURED),
        ("payment_status", PaymentStatus.REFUNDED, PaymentStatus.CAPTURED),
    ],
)
def test_moves_missing_from_the_table_are_refused_and_leave_no_trace(field, start, to):
    order = _order(**{field: start})
    with pytest.raises(InvalidTransition):
        order_transition(order=order, to=to, field=field)
    order.refresh_from_db()
    assert getattr(order, field) == start
    assert not order.events.exists()


def test_cancel_is_possible_from_every_status_before_shipping_and_none_after():
    before = {OrderStatus.PENDING_PAYMENT, OrderStatus.AWAITING_REVIEW, OrderStatus.READY_TO_SHIP}
    for status, moves in ORDER_TRANSITIONS.items():
        assert (OrderStatus.CANCELED in moves) == (status in before), status
    assert PAYMENT_TRANSITIONS[PaymentStatus.REFUNDED] == frozenset()


@pytest.mark.django_db
def test_events_are_append_only():
    order = _order()
    event = order_transition(order=order, to=OrderStatus.CANCELED)
    event.note = "rewritten"
    with pytest.raises(ValueError):
        event.save()
