"""The staff digest of card holds about to lapse: listed once a day per order, no item names."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from notifications.models import DigestEntry, EmailKind, OutboundEmail
from orders.emails import expiring_holds_digest, holds_digest_queue
from orders.models import Order, OrderEvent
from orders.state import PaymentStatus
from tests.notifications.conftest import make_order


def _authorised(order, *, ago: timedelta, now):
    event = OrderEvent.objects.create(
        order=order,
        kind=OrderEvent.Kind.PAYMENT,
        from_status=PaymentStatus.PENDING,
        to_status=PaymentStatus.AUTHORIZED,
    )
    OrderEvent.objects.filter(pk=event.pk).update(created_at=now - ago)
    return order


def test_digest_lists_only_holds_expiring_within_a_day_once_per_day(
    baclofen, mailoutbox, django_capture_on_commit_callbacks
):
    now = timezone.now()
    soon = _authorised(make_order(product=baclofen), ago=timedelta(days=6, hours=12), now=now)
    later = _authorised(make_order(product=baclofen), ago=timedelta(days=1), now=now)
    captured = _authorised(
        make_order(product=baclofen, payment_status=PaymentStatus.CAPTURED),
        ago=timedelta(days=6, hours=20),
        now=now,
    )
    # No "authorized" event recorded: the order's creation time stands in for the hold's start.
    no_event = make_order(product=baclofen)
    Order.objects.filter(pk=no_event.pk).update(created_at=now - timedelta(days=6, hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        email = expiring_holds_digest(now=now)

    [message] = mailoutbox
    assert message.to == [settings.PHARMACY_STAFF_EMAIL]
    assert message.subject == "2 card holds expire soon: capture or cancel"
    html = message.alternatives[0][0]
    for body in (message.body, html):
        assert str(soon.number) in body and str(no_event.number) in body
        assert str(later.number) not in body and str(captured.number) not in body
        assert "Baclofen" not in body and "baclofen" not in body.casefold()
        assert f"{settings.SITE_URL}/admin/" in body
    # Oldest hold first: it lapses first.
    assert message.body.index(str(soon.number)) < message.body.index(str(no_event.number))
    assert set(DigestEntry.objects.filter(email=email).values_list("order_id", flat=True)) == {
        soon.pk,
        no_event.pk,
    }

    # The hourly run again the same day: nothing new to say.
    with django_capture_on_commit_callbacks(execute=True):
        assert expiring_holds_digest(now=now) is None
    assert len(mailoutbox) == 1


def test_an_order_already_listed_today_is_left_out_and_listed_again_tomorrow(
    baclofen, mailoutbox, django_capture_on_commit_callbacks
):
    first, second = make_order(product=baclofen), make_order(product=baclofen)
    expires = timezone.now() + timedelta(hours=5)
    today = timezone.localdate()

    with django_capture_on_commit_callbacks(execute=True):
        holds_digest_queue(holds=[(first, expires)], day=today)
        holds_digest_queue(holds=[(first, expires), (second, expires)], day=today)
        holds_digest_queue(holds=[(first, expires)], day=today + timedelta(days=1))

    assert [m.subject for m in mailoutbox] == ["1 card hold expires soon: capture or cancel"] * 3
    assert str(first.number) in mailoutbox[0].body
    assert str(second.number) in mailoutbox[1].body and str(first.number) not in mailoutbox[1].body
    assert str(first.number) in mailoutbox[2].body
    assert OutboundEmail.objects.filter(kind=EmailKind.STAFF_AUTHORISATIONS_EXPIRING).count() == 3
