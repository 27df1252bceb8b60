"""The counselling offer that comes with a new prescription (issue 25): posted to the patient's
messages when a pharmacist approves (as ordered, with changes, or kept on file), once; offered by
phone in the approval email of a guest order; not repeated for a refill."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from prescriptions import decisions as rx
from prescriptions.models import MessageKind, PatientMessage
from prescriptions.refill_review import refill_approve
from tests.orders.conftest import make_cart
from tests.prescriptions.prescription_support import authorise, place_rx
from tests.prescriptions.refills.support import approve_first_order, place_refill

pytestmark = pytest.mark.django_db

IN_ACCOUNT = "A pharmacist has written to you in your account's messages"
BY_PHONE = f"Call us on {settings.PHARMACY_PHONE} to talk to a pharmacist."


def offers() -> list[PatientMessage]:
    return list(PatientMessage.objects.filter(kind=MessageKind.COUNSELLING_OFFER))


def approval_email(order) -> str:
    email = OutboundEmail.objects.get(order=order, kind=EmailKind.PRESCRIPTION_APPROVED)
    return email_render(email=email).body


def account_order(localstripe, tier, patient, packages: int = 1):
    cart = make_cart(tier=tier, packages=packages, user=patient)
    return authorise(localstripe, place_rx(cart, tier=tier, user=patient, email=patient.email))


def test_approving_a_new_prescription_posts_the_offer_once(
    localstripe, baclofen_90, patient, pharmacist
):
    order = account_order(localstripe, baclofen_90, patient)
    key = uuid.uuid4()
    rx.prescription_approve(order=order, by=pharmacist, submission_key=key)
    rx.prescription_approve(order=order, by=pharmacist, submission_key=key)  # a double click
    [offer] = offers()
    assert (offer.thread.patient, offer.order, offer.author) == (patient, order, pharmacist)
    assert "Do you have questions about your new medicine" in offer.body
    assert settings.PHARMACY_PHONE in offer.body
    # One email for the event: the approval email says a pharmacist has written (no second notice).
    assert IN_ACCOUNT in approval_email(order)
    assert not OutboundEmail.objects.filter(kind=EmailKind.PHARMACY_MESSAGE).exists()


def test_approving_with_changes_posts_the_offer(localstripe, baclofen_90, patient, pharmacist):
    order = account_order(localstripe, baclofen_90, patient, packages=2)
    line = order.lines.get()
    rx.prescription_approve_with_changes(
        order=order, by=pharmacist, approved_packages={line.pk: 1}, note="One pack prescribed."
    )
    assert [offer.order for offer in offers()] == [order]
    assert IN_ACCOUNT in approval_email(order)


def test_a_guest_order_gets_the_offer_by_phone_in_its_approval_email(
    localstripe, baclofen_90, pharmacist
):
    order = authorise(localstripe, place_rx(make_cart(tier=baclofen_90), tier=baclofen_90))
    assert order.user_id is None
    rx.prescription_approve(order=order, by=pharmacist)
    assert offers() == []
    text = approval_email(order)
    assert "Do you have questions about your new medicine" in text and BY_PHONE in text
    assert IN_ACCOUNT not in text


def test_a_refill_is_not_offered_counselling_again(localstripe, baclofen_90, patient, pharmacist):
    from tests.prescriptions.refills.support import age_last_fill

    _, first, record = approve_first_order(
        localstripe, baclofen_90, user=patient, pharmacist=pharmacist
    )
    assert [offer.order for offer in offers()] == [first]  # kept on file: a new prescription
    age_last_fill(record, days=25)
    refill = place_refill(localstripe, record, baclofen_90)
    refill_approve(order=refill, by=pharmacist, submission_key=uuid.uuid4())
    assert [offer.order for offer in offers()] == [first]
    text = approval_email(refill)
    assert IN_ACCOUNT not in text and BY_PHONE not in text
