"""Every email the shop sends: what it says, who gets it, and that the subject names no medicine."""

import re

import pytest
from django.conf import settings
from djmoney.money import Money

from notifications.models import EmailKind, EmailStatus, OutboundEmail
from orders.emails import order_email, order_email_context
from orders.services import order_token_is_valid
from tests.factories import ProductFactory
from tests.notifications.conftest import make_order

CUSTOMER_KINDS = {
    EmailKind.ORDER_RECEIVED: {},
    EmailKind.PAYMENT_CAPTURED: {},
    EmailKind.PRESCRIPTION_APPROVED: {},
    EmailKind.PRESCRIPTION_REJECTED: {
        "reason": "The prescription was issued more than a year ago."
    },
    EmailKind.INFORMATION_REQUESTED: {
        "message": "Which other medicines are you taking at the moment?"
    },
    EmailKind.SHIPPED: {
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    },
    EmailKind.REFUND_ISSUED: {
        "amount": Money("12.50", "USD"),
        "reason": "One pack was out of stock.",
    },
}


def _queue_and_send(order, kind, context, capture, event=None):
    with capture(execute=True):
        order_email(order=order, kind=kind, details=context, event=event)


def _html(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def _private_words(order) -> list[str]:
    words = set()
    for line in order.lines.select_related("tier__dosage__product"):
        product = line.tier.dosage.product
        words |= {line.product_name, product.name, product.active_ingredient}
        words |= {part.strip() for part in re.split(r"[,;]", product.indications) if part.strip()}
    return sorted(words)


@pytest.mark.parametrize("kind", list(CUSTOMER_KINDS))
def test_customer_email_lists_the_order_and_its_subject_names_no_medicine(
    kind, order, mailoutbox, django_capture_on_commit_callbacks
):
    _queue_and_send(
        order, kind, CUSTOMER_KINDS[kind], django_capture_on_commit_callbacks, event="evt-1"
    )

    [message] = mailoutbox
    assert message.to == [order.email]
    assert str(order.number) in message.subject
    for word in _private_words(order):
        assert word.casefold() not in message.subject.casefold(), (
            f"{word!r} leaked into {message.subject!r}"
        )
    html = _html(message)
    for body in (message.body, html):
        assert str(order.number) in body
        assert "Baclofen" in body  # the customer sees what they bought
        assert str(order.total) in body or kind in (EmailKind.REFUND_ISSUED,)
        for line in order.lines.all():
            assert str(line.line_total) in body
    # The order link is absolute and carries a valid signed token.
    link = re.search(r'href="([^"]+\?t=[^"]+)"', html).group(1)
    assert link.startswith(settings.SITE_URL + "/")
    assert link.replace("&amp;", "&") in message.body
    assert order_token_is_valid(order=order, token=link.split("?t=")[1])
    row = OutboundEmail.objects.get(order=order, kind=kind)
    assert (row.status, row.attempts, row.subject) == (EmailStatus.SENT, 1, message.subject)


def test_rejection_gives_the_reason_and_says_nothing_was_charged(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    reason = CUSTOMER_KINDS[EmailKind.PRESCRIPTION_REJECTED]["reason"]
    _queue_and_send(
        order,
        EmailKind.PRESCRIPTION_REJECTED,
        {"reason": reason},
        django_capture_on_commit_callbacks,
    )

    [message] = mailoutbox
    for body in (message.body, _html(message)):
        assert reason in body
        assert "hold on your card has been released and nothing was charged" in body
    assert "not approve" not in message.subject.casefold()  # the subject stays neutral


def test_shipped_email_gives_carrier_and_tracking(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    extra = CUSTOMER_KINDS[EmailKind.SHIPPED]
    _queue_and_send(order, EmailKind.SHIPPED, extra, django_capture_on_commit_callbacks)

    [message] = mailoutbox
    for body in (message.body, _html(message)):
        assert "UPS" in body and extra["tracking_number"] in body
    assert f'href="{extra["tracking_url"]}"' in _html(message)


def test_information_request_quotes_the_pharmacist(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    extra = CUSTOMER_KINDS[EmailKind.INFORMATION_REQUESTED]
    _queue_and_send(
        order, EmailKind.INFORMATION_REQUESTED, extra, django_capture_on_commit_callbacks, event=7
    )

    [message] = mailoutbox
    assert extra["message"] in message.body
    assert "Which other medicines are you taking at the moment?" in _html(message)


def test_refund_email_states_the_amount(order, mailoutbox, django_capture_on_commit_callbacks):
    _queue_and_send(
        order,
        EmailKind.REFUND_ISSUED,
        CUSTOMER_KINDS[EmailKind.REFUND_ISSUED],
        django_capture_on_commit_callbacks,
        event="re_1",
    )

    [message] = mailoutbox
    assert "We have refunded $12.50" in message.body
    assert "$12.50" in _html(message)


def test_staff_new_order_notice_has_counts_and_admin_link_but_no_items(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    _queue_and_send(order, EmailKind.STAFF_NEW_ORDER, {}, django_capture_on_commit_callbacks)

    [message] = mailoutbox
    assert message.to == [settings.PHARMACY_STAFF_EMAIL]
    assert str(order.number) in message.subject
    html = _html(message)
    for body in (message.body, html):
        assert str(order.number) in body and str(order.total) in body
        assert "2 (2 packages)" in body.replace("</td>", "").replace("<td>", "")
        for word in _private_words(order):
            assert word.casefold() not in body.casefold(), f"{word!r} appears in a staff notice"
        assert "?t=" not in body  # no customer link in a staff email
    assert settings.SITE_URL + "/admin/" in html


def test_order_received_for_a_prescription_order_explains_the_review_and_the_hold(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    _queue_and_send(order, EmailKind.ORDER_RECEIVED, {}, django_capture_on_commit_callbacks)

    [message] = mailoutbox
    assert message.subject == f"We've received your order {order.number}"
    assert "This is a hold, not a charge" in message.body
    assert "pharmacists will check your prescription" in message.body
    assert (
        "&#x27;" not in message.body and "&amp;" not in message.body
    )  # plain text is not HTML-escaped


def test_a_subject_that_would_name_a_medicine_is_never_sent(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    """Defence in depth: if a product's name shows up in a subject (here a medicine oddly named
    "Receipt"), the email fails loudly instead of leaking it."""
    product = ProductFactory(name="Receipt", active_ingredient="receiptol")
    from tests.factories import DosageFactory, PackageTierFactory

    dosage = DosageFactory(product=product)
    PackageTierFactory(dosage=dosage)
    order = make_order(product=product, lines=1)

    _queue_and_send(order, EmailKind.PAYMENT_CAPTURED, {}, django_capture_on_commit_callbacks)

    assert mailoutbox == []
    row = OutboundEmail.objects.get(order=order)
    assert row.status == EmailStatus.FAILED
    assert "UnsafeSubjectError" in row.last_error


def test_rendering_an_email_costs_the_same_queries_for_two_or_twelve_lines(
    baclofen, mailoutbox, django_assert_max_num_queries
):
    from notifications.services import email_send

    counts = []
    for lines in (2, 12):
        order = make_order(product=baclofen, lines=lines)
        row = OutboundEmail.objects.create(
            order=order,
            kind=EmailKind.ORDER_RECEIVED,
            recipient=order.email,
            dedupe_key=f"{order.pk}:x",
            context=order_email_context(order=order, kind=EmailKind.ORDER_RECEIVED),
        )
        with django_assert_max_num_queries(6) as captured:
            assert email_send(log_id=row.pk) is True
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]
    assert len(mailoutbox) == 2


def test_approval_with_changes_explains_the_new_total_and_what_is_charged(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    """The call the prescription review makes when the pharmacist approves fewer packs."""
    from orders.models import Order

    Order.objects.filter(pk=order.pk).update(amount_captured=Money("60.00", "USD"))
    order.refresh_from_db()  # the review queues the email with the order it has just captured
    extra = {
        "note": "Your prescription covers 60 tablets.",
        "ordered_total": Money("130.36", "USD"),
        "approved_total": Money("60.00", "USD"),
    }
    _queue_and_send(
        order, EmailKind.PRESCRIPTION_APPROVED, extra, django_capture_on_commit_callbacks
    )

    [message] = mailoutbox
    assert message.subject == f"Your order {order.number} has been approved"
    for body in (message.body, _html(message)):
        assert "came to $130.36 as ordered and comes to" in body and "$60.00" in body
        assert "Only the approved amount is charged" in body
        assert "Your prescription covers 60 tablets." in body
        assert "We have now taken the payment of" in body


def test_shipped_email_links_the_carriers_tracking_page_when_staff_give_only_the_number(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    """What ``order_mark_shipped`` queues: a carrier and a number, no URL."""
    _queue_and_send(
        order,
        EmailKind.SHIPPED,
        {"carrier": "USPS", "tracking_number": "9400 1000"},
        django_capture_on_commit_callbacks,
    )
    [message] = mailoutbox
    assert "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201000" in message.body

    mailoutbox.clear()
    other = make_order(product=order.lines.first().tier.dosage.product)
    _queue_and_send(
        other,
        EmailKind.SHIPPED,
        {"carrier": "Hand delivery", "tracking_number": "HD-1"},
        django_capture_on_commit_callbacks,
    )
    [message] = mailoutbox
    assert "Track your parcel" not in message.body and "HD-1" in message.body


def test_order_received_for_an_order_captured_at_once_says_it_is_paid(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    """General-sale orders are captured as soon as the card is authorised: no talk of a hold."""
    from catalog.models import LegalClass
    from tests.factories import DosageFactory, PackageTierFactory

    product = ProductFactory(name="Loratadine", legal_class=LegalClass.GENERAL_SALE)
    PackageTierFactory(dosage=DosageFactory(product=product), price=Money("12.00", "USD"))
    order = make_order(
        product=product, lines=1, payment_status="captured", amount_captured=Money("21.95", "USD")
    )

    _queue_and_send(order, EmailKind.ORDER_RECEIVED, {}, django_capture_on_commit_callbacks)

    [message] = mailoutbox
    for body in (message.body, _html(message)):
        assert "We have taken the payment of" in body and "$21.95" in body
        assert "hold" not in body
        assert "pharmacist" not in body.split("Questions about")[0]


def test_a_resend_sends_the_email_as_it_was_queued_not_as_the_order_is_now(
    order, mailoutbox, django_capture_on_commit_callbacks
):
    """The row keeps its context: an email that failed and is resent later says what it said."""
    from notifications.services import email_resend

    row = order_email(order=order, kind=EmailKind.ORDER_RECEIVED)  # not sent: the commit never ran
    OutboundEmail.objects.filter(pk=row.pk).update(
        status=EmailStatus.FAILED, last_error="SMTP down"
    )
    type(order).objects.filter(pk=order.pk).update(ship_name="Someone Else")

    with django_capture_on_commit_callbacks(execute=True):
        assert email_resend(email=row) is True
    [message] = mailoutbox
    assert f"Hello {order.ship_name}," in message.body and "Someone Else" not in message.body


def test_the_outbox_takes_only_plain_data(order):
    """An unformatted amount is a bug in the sender, caught when it queues, not at send time."""
    from notifications.services import email_queue

    with pytest.raises(TypeError, match="plain JSON"):
        email_queue(
            kind=EmailKind.ORDER_RECEIVED,
            to=order.email,
            context={"total": order.total},
            dedupe_key="x",
        )
