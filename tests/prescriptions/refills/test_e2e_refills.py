"""Done-when of issue #16, in Chromium against localstripe: first order kept on file with 3
refills; a refill from the account with no prescription step; the pharmacist approves it
(captured, 2 left); an early refill shown as too soon with the date, no payment taken; the reminder job with a
fixed clock sends exactly one reminder, none to a customer who opted out."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from orders.models import Order
from orders.state import OrderStatus, PaymentStatus
from prescriptions import reminders
from prescriptions.models import PrescriptionOnFile, RefillReminderSettings
from tests.e2e.test_prescription import shop, sign_in_as  # noqa: F401  (the live shop fixture)
from tests.factories import UserFactory
from tests.localstripe import CARD_OK
from tests.prescriptions.prescription_support import captured_minor, make_pharmacist
from tests.prescriptions.refills.support import age_last_fill, approve_first_order

pytestmark = pytest.mark.e2e


def refill_from_account(page, shop, record, *, remind: bool = False) -> Order:
    """The customer's side: My prescriptions → Refill → cart → checkout with no prescription step."""
    page.goto(shop.url + reverse("refills:list"))
    page.get_by_role("link", name=re.compile(r"Refill\s+Baclofen")).click()
    page.get_by_role("button", name="Refill: add to cart").click()
    page.wait_for_url(re.compile(r"/cart/"))
    page.goto(shop.url + reverse("checkout:checkout"))
    assert page.locator(".prescription-step").count() == 0
    step = page.locator("#refill-step").inner_text()
    assert "Refills your prescription for Baclofen 10mg" in step and "a pill" in step
    # The address the last order shipped to is offered.
    assert page.get_by_label("Address line 1").input_value() == "100 River Street"
    page.get_by_label("Email").fill(record.user.email)
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Address line 1").fill("100 River Street")
    page.get_by_label("City").fill("Albany")
    page.get_by_label("State").select_option("NY")
    page.get_by_label("ZIP code").fill("12207")
    if remind:
        page.get_by_label(re.compile("Remind me before")).check()
    card_box = page.locator("#card-element")
    card_box.get_by_placeholder("number").fill(CARD_OK)
    card_box.get_by_placeholder("exp_month").fill("12")
    card_box.get_by_placeholder("exp_year").fill("34")
    card_box.get_by_placeholder("cvc").fill("123")
    card_box.get_by_placeholder("postal_code").fill("12207")
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_url(re.compile(r"/orders/\d+/"))
    order = Order.objects.get(number=int(page.locator("#order-number").inner_text()))
    assert (order.status, order.payment_status) == (
        OrderStatus.AWAITING_REVIEW,
        PaymentStatus.AUTHORIZED,
    )
    return order


def test_prescription_on_file_refills_and_reminders_in_the_browser(
    shop, page, baclofen, localstripe
):
    from catalog.models import PackageTier

    tier = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    customer = UserFactory(email="jane@example.com")
    pharmacist = make_pharmacist()
    # The first order (its browser checkout is covered by tests/e2e/test_prescription.py), then the
    # pharmacist keeps it on file with 3 refills from the review page.
    from cart.models import Cart, CartLine
    from tests.prescriptions.prescription_support import authorise, place_rx

    cart = Cart.objects.create(user=customer)
    CartLine.objects.create(cart=cart, tier=tier, packages=1, price_when_added=tier.price)
    first = authorise(localstripe, place_rx(cart, tier=tier, user=customer, email=customer.email))
    staff = page.context.browser.new_page()
    sign_in_as(staff, shop, pharmacist)
    staff.goto(shop.url + reverse("prescriptions:review_order", args=[first.number]))
    staff.get_by_label("Directions").fill("1 tablet 3 times a day")
    staff.get_by_label("Daily dose (pills a day)").fill("3")
    staff.get_by_label("Refills written").fill("3")
    staff.get_by_role("button", name=re.compile("Approve and charge")).click()
    staff.wait_for_url(re.compile(r"/staff/review/$"))
    record = PrescriptionOnFile.objects.get(source_order=first)
    assert (record.refills_left, record.quantity_per_fill) == (3, 90)

    # 25 days later (90 pills at 3 a day last 30; a refill is possible after 23) the customer refills.
    sign_in_as(page, shop, customer)
    age_last_fill(record, days=25)
    page.goto(shop.url + reverse("refills:list"))
    assert "3 of 3" in page.locator(f"#prescription-{record.pk}").inner_text()
    refill = refill_from_account(page, shop, record, remind=True)  # and agrees to reminders
    assert RefillReminderSettings.objects.get(user=customer).reminders is True

    staff.goto(shop.url + reverse("prescriptions:review_queue"))
    card = staff.locator(f"#refill-{refill.number}")
    assert "Checks pass" in card.inner_text() and "3 of 3" in card.inner_text()
    staff.get_by_role("link", name=f"Review refill {refill.number}").click()
    staff.get_by_role("button", name=re.compile("Approve refill")).click()
    staff.wait_for_url(re.compile(r"/staff/review/$"))
    refill.refresh_from_db()
    record.refresh_from_db()
    assert (refill.status, refill.payment_status) == (
        OrderStatus.READY_TO_SHIP,
        PaymentStatus.CAPTURED,
    )
    assert captured_minor(localstripe, refill.stripe_payment_intent_id) == int(
        refill.total.amount * 100
    )
    assert record.refills_left == 2
    page.goto(shop.url + reverse("refills:list"))
    assert "2 of 3" in page.locator(f"#prescription-{record.pk}").inner_text()

    # The same day, another refill is too soon: the account says from when and takes no payment.
    possible = record.last_filled_on + timedelta(days=23)
    page.goto(shop.url + reverse("refills:list"))
    assert (
        f"Too soon, from {possible:%B %-d, %Y}"
        in page.locator(f"#prescription-{record.pk}").inner_text()
    )
    page.goto(shop.url + reverse("refills:detail", args=[record.pk]))
    assert page.get_by_role("button", name=f"Too soon, from {possible:%B %-d, %Y}").is_disabled()

    # Reminders, with the clock fixed 25 days after the last fill: one for Jane, none for the
    # customer who opted out, and none again on the next run.
    opted_out, _, other = approve_first_order(localstripe, tier, pharmacist=pharmacist)
    RefillReminderSettings.objects.create(user=opted_out, reminders=False)
    PrescriptionOnFile.objects.filter(pk=other.pk).update(last_filled_on=record.last_filled_on)
    day = record.last_filled_on + timedelta(days=25)
    assert reminders.refill_reminders_send(today=day) == 1
    assert reminders.refill_reminders_send(today=day + timedelta(days=1)) == 0
    sent = OutboundEmail.objects.filter(kind=EmailKind.REFILL_REMINDER)
    assert [e.recipient for e in sent] == ["jane@example.com"]
    assert "baclofen" not in email_render(email=sent.get()).subject.casefold()
    staff.close()
