"""Messages with a pharmacist (issue 25): who may read and write, what the email says, read marks,
waiting times, the audit trail, the export, bad input, and ``no-store``."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailKind, OutboundEmail
from notifications.services import email_render
from prescriptions import messages as rx_messages
from prescriptions.models import MessageKind, MessageThread, PatientMessage
from tests.factories import UserFactory

from .conftest import order_with_line

pytestmark = pytest.mark.django_db

THREAD = reverse("messaging:thread")
INBOX = reverse("messaging:inbox")
QUESTION = "Can I take my Baclofen with ibuprofen? I also have kidney problems."
ANSWER = "Yes, ibuprofen is fine for a few days; with kidney problems keep to the lowest dose."


def staff_thread(patient) -> str:
    return reverse("messaging:staff_thread", args=[patient.pk])


def post(client, url, body, **extra):
    return client.post(url, {"body": body, "submission_key": str(uuid.uuid4()), **extra})


def notices(patient) -> list[OutboundEmail]:
    return list(
        OutboundEmail.objects.filter(kind=EmailKind.PHARMACY_MESSAGE, recipient=patient.email)
    )


# --- The conversation ------------------------------------------------------------------------


def test_patient_asks_pharmacist_answers_with_read_marks_and_one_notice(
    client, patient, pharmacist, patient_order
):
    client.force_login(patient)
    response = post(client, THREAD, QUESTION, about=f"order:{patient_order.number}")
    assert response.status_code == 302
    question = PatientMessage.objects.get()
    assert (question.author, question.order, question.sender) == (
        patient,
        patient_order,
        "patient",
    )
    thread = question.thread
    assert thread.awaiting_reply_since == question.created_at
    assert rx_messages.unread_for_pharmacy(patient) == 1
    assert notices(patient) == []  # the patient's own message emails nobody

    client.force_login(pharmacist)
    row = rx_messages.inbox(by=pharmacist)[0]
    assert (row.thread, row.unread, row.last_sender) == (thread, 1, "patient")
    page = client.get(staff_thread(patient))
    assert QUESTION in page.content.decode()
    assert rx_messages.unread_for_pharmacy(patient) == 0  # opening it marks it read
    assert post(client, staff_thread(patient), ANSWER).status_code == 302
    thread.refresh_from_db()
    assert thread.awaiting_reply_since is None
    assert rx_messages.unread_for_patient(patient) == 1
    assert len(notices(patient)) == 1

    # A second message before the patient has read the first: still one email.
    post(client, staff_thread(patient), "And take it with food.")
    assert len(notices(patient)) == 1

    client.force_login(patient)
    page = client.get(THREAD).content.decode()
    assert ANSWER in page and "Ruth O., pharmacist" in page and "Read by the pharmacy" in page
    assert rx_messages.unread_for_patient(patient) == 0
    # Read now: the next answer is a new notice.
    client.force_login(pharmacist)
    post(client, staff_thread(patient), "One more thing: no alcohol.")
    assert len(notices(patient)) == 2


def test_the_email_notice_says_only_that_a_message_waits(patient, pharmacist, patient_order):
    rx_messages.message_post_by_pharmacist(
        patient=patient, by=pharmacist, body=ANSWER, order=patient_order
    )
    email = email_render(email=notices(patient)[0])
    sign_in = f"{settings.SITE_URL.rstrip('/')}/accounts/login/?next=%2Faccounts%2Fmessages%2F"
    assert email.subject == f"You have a new message from {settings.PHARMACY_NAME}"
    assert email.to == [patient.email]
    assert email.body.rstrip("\n") == (
        f"{settings.PHARMACY_NAME}\n"
        f"Licensed pharmacy · {settings.PHARMACY_LICENCE_NUMBER}\n\n"
        "Hello,\n\n"
        f"A pharmacist at {settings.PHARMACY_NAME} has sent you a message. For your privacy we do "
        "not put messages in email: please sign in to read it and to answer.\n\n"
        f"Sign in to read your message:\n{sign_in}\n\n"
        "--\n"
        "Please do not reply to this email with health details: email is not private. Write to "
        f"us from your account, or call us on {settings.PHARMACY_PHONE}.\n"
        f"{settings.PHARMACY_NAME} · {settings.PHARMACY_ADDRESS}\n"
        f"Pharmacist in charge: {settings.PHARMACIST_IN_CHARGE}"
    )
    html = email.alternatives[0][0]
    everything = f"{email.subject} {email.body} {html}".casefold()
    for detail in ("baclofen", "10mg", "ibuprofen", "kidney", str(patient_order.number), "jane"):
        assert detail not in everything
    assert f'href="{sign_in}"' in html


def test_a_closed_account_gets_no_notice(patient, pharmacist):
    from accounts.services import account_close

    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    account_close(user=patient)
    rx_messages.message_post_by_pharmacist(patient=patient, by=pharmacist, body=ANSWER)
    assert not OutboundEmail.objects.filter(kind=EmailKind.PHARMACY_MESSAGE).exists()
    # Kept with the record: closing the account deletes no message.
    assert PatientMessage.objects.filter(thread__patient=patient).count() == 2


def test_inbox_lists_waiting_patients_first_oldest_wait_first(client, pharmacist):
    now = timezone.now()
    answered, recent, oldest = UserFactory(), UserFactory(), UserFactory()
    for who in (answered, recent, oldest):
        rx_messages.message_post_by_patient(patient=who, body="A question")
    rx_messages.message_post_by_pharmacist(patient=answered, by=pharmacist, body="An answer")
    MessageThread.objects.filter(patient=oldest).update(
        awaiting_reply_since=now - timedelta(days=1, hours=3)
    )
    MessageThread.objects.filter(patient=recent).update(
        awaiting_reply_since=now - timedelta(minutes=42)
    )
    rows = rx_messages.inbox(by=pharmacist, now=now)
    assert [row.thread.patient for row in rows] == [oldest, recent, answered]
    assert [row.waiting for row in rows] == ["1 d 3 h", "42 min", ""]
    assert [row.unread for row in rows] == [1, 1, 0]  # answering marks the thread read

    client.force_login(pharmacist)
    page = client.get(INBOX).content.decode()
    assert re.search(r'id="inbox-waiting">2<', page)
    assert page.index(f'id="thread-{oldest.pk}"') < page.index(f'id="thread-{recent.pk}"')
    header = client.get(reverse("prescriptions:review_queue")).content.decode()
    assert re.search(
        r'id="header-messages"[^>]*>Messages <span class="review-count">2</span>', header
    )


def test_inbox_costs_the_same_queries_for_one_or_ten_threads(client, pharmacist):
    client.force_login(pharmacist)
    rx_messages.message_post_by_patient(patient=UserFactory(), body="Hello")
    client.get(INBOX)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(INBOX).status_code == 200
        return len(ctx.captured_queries)

    one = count()
    for _ in range(9):
        rx_messages.message_post_by_patient(patient=UserFactory(), body="Hello")
    assert count() == one


def test_the_header_counts_cost_customers_nothing(client, patient):
    client.force_login(patient)
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="header-messages"' not in page
    assert 'href="/accounts/messages/"' in page


def test_account_page_shows_unread_messages(client, patient, pharmacist):
    rx_messages.message_post_by_pharmacist(patient=patient, by=pharmacist, body=ANSWER)
    client.force_login(patient)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert "1 new message from the pharmacy." in page


# --- Access ----------------------------------------------------------------------------------


def test_another_patient_gets_404_for_an_order_that_is_not_theirs(
    client, other_patient, patient, patient_order
):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION, order=patient_order)
    client.force_login(other_patient)
    assert client.get(THREAD, {"order": patient_order.number}).status_code == 404
    # Their own thread page shows nothing of the other patient's.
    page = client.get(THREAD).content.decode()
    assert QUESTION not in page and str(patient_order.number) not in page
    # Naming the order in a post is refused (it is not among their choices): 400, nothing saved.
    response = post(client, THREAD, "Hello", about=f"order:{patient_order.number}")
    assert response.status_code == 400
    assert not PatientMessage.objects.filter(author=other_patient).exists()
    # The staff pages do not exist for a customer.
    assert client.get(staff_thread(patient)).status_code == 404
    assert client.get(INBOX).status_code == 404
    assert post(client, staff_thread(patient), "Hi").status_code == 404
    with pytest.raises(rx_messages.MessageError):
        rx_messages.message_post_by_patient(patient=other_patient, body="x", order=patient_order)


def test_staff_without_the_permission_get_403_and_the_service_refuses(client, clerk, patient):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    client.force_login(clerk)
    assert client.get(INBOX).status_code == 403
    assert client.get(staff_thread(patient)).status_code == 403
    assert post(client, staff_thread(patient), "Hello").status_code == 403
    with pytest.raises(PermissionDenied):
        rx_messages.message_post_by_pharmacist(patient=patient, by=clerk, body="Hello")
    with pytest.raises(PermissionDenied):
        rx_messages.inbox(by=clerk)
    assert PatientMessage.objects.count() == 1
    assert rx_messages.unread_for_pharmacy(patient) == 1  # the refused page marked nothing read
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert 'id="header-messages"' not in page


def test_signed_out_visitors_are_sent_to_sign_in(client, patient):
    assert client.get(THREAD).status_code == 302
    assert client.get(INBOX).status_code == 302
    assert client.get(staff_thread(patient)).status_code == 302


def test_staff_without_second_factor_are_sent_to_give_it(client, pharmacist):
    from tests.accounts.mfa import password_only_login

    password_only_login(client, pharmacist)
    response = client.get(INBOX)
    assert response.status_code == 302 and "/accounts/" in response["Location"]


@pytest.mark.parametrize("who", ["patient", "pharmacist"])
def test_every_page_that_shows_messages_is_no_store(client, patient, pharmacist, who):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    client.force_login(patient if who == "patient" else pharmacist)
    urls = (
        [THREAD, reverse("accounts:data_export")]
        if who == "patient"
        else [INBOX, staff_thread(patient)]
    )
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    bad = post(client, THREAD if who == "patient" else staff_thread(patient), "")
    assert bad.status_code == 400 and "no-store" in bad["Cache-Control"]


# --- Bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"body": "   "}, "This field is required."),
        ({"body": "x" * 4001}, "at most 4000 characters"),
        ({"body": "Hi", "submission_key": "not-a-uuid"}, "This form is out of date"),
        ({"body": "Hi", "about": "order:999999999"}, "Select a valid choice."),
        ({"body": "Hi", "about": "rx:abc"}, "Select a valid choice."),
    ],
)
def test_bad_input_is_a_400_with_the_reason(client, patient, data, reason):
    client.force_login(patient)
    response = client.post(THREAD, {"submission_key": str(uuid.uuid4()), **data})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not PatientMessage.objects.exists()


def test_exactly_4000_characters_are_accepted(client, patient):
    client.force_login(patient)
    assert post(client, THREAD, "x" * 4000).status_code == 302
    assert len(PatientMessage.objects.get().body) == 4000


@pytest.mark.parametrize("order", ["abc", "-1", "99999999", "1" + "0" * 30, ""])
def test_a_bad_order_link_is_a_404(client, patient, order):
    client.force_login(patient)
    assert client.get(THREAD, {"order": order}).status_code == 404


@pytest.mark.parametrize("prescription", ["abc", "0", "1" + "0" * 30, ""])
def test_a_bad_prescription_link_is_a_404(client, patient, prescription):
    client.force_login(patient)
    assert client.get(THREAD, {"prescription": prescription}).status_code == 404


def test_staff_page_of_no_such_patient_is_a_404(client, pharmacist):
    client.force_login(pharmacist)
    assert client.get(reverse("messaging:staff_thread", args=[987654321])).status_code == 404


def test_a_double_clicked_send_posts_once(client, patient):
    client.force_login(patient)
    key = str(uuid.uuid4())
    for _ in range(2):
        assert client.post(THREAD, {"body": QUESTION, "submission_key": key}).status_code == 302
    assert PatientMessage.objects.count() == 1


# --- The record ------------------------------------------------------------------------------


def test_sent_messages_can_never_be_changed_or_deleted(patient, pharmacist):
    message = rx_messages.message_post_by_pharmacist(patient=patient, by=pharmacist, body=ANSWER)
    message.body = "Something else"
    with pytest.raises(ValueError, match="cannot be changed"):
        message.save()
    with pytest.raises(ValueError, match="cannot be deleted"):
        message.delete()
    with pytest.raises(ValueError, match="cannot be changed"):
        PatientMessage.objects.filter(pk=message.pk).update(body="Edited")
    with pytest.raises(ValueError, match="cannot be deleted"):
        PatientMessage.objects.filter(pk=message.pk).delete()
    assert PatientMessage.objects.get().body == ANSWER


def test_the_account_export_holds_the_messages(client, patient, pharmacist, patient_order):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION, order=patient_order)
    rx_messages.message_post_by_pharmacist(patient=patient, by=pharmacist, body=ANSWER)
    client.force_login(patient)
    data = json.loads(client.get(reverse("accounts:data_export")).content)
    exported = data["messages_with_pharmacist"]
    assert [(m["from"], m["text"], m["order"]) for m in exported] == [
        ("You", QUESTION, patient_order.number),
        ("Ruth O., pharmacist", ANSWER, None),
    ]
    assert [m["read_by_the_other_side"] for m in exported] == [True, False]


def test_the_export_of_another_patient_holds_none_of_them(client, patient, other_patient):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    client.force_login(other_patient)
    data = json.loads(client.get(reverse("accounts:data_export")).content)
    assert data["messages_with_pharmacist"] == []


# --- The counselling offer -------------------------------------------------------------------


def test_counselling_offer_is_posted_once_per_order(patient, pharmacist, patient_order):
    rx_messages.message_post_by_patient(patient=patient, body=QUESTION)
    offer = rx_messages.counselling_offer_post(order=patient_order, by=pharmacist)
    assert rx_messages.counselling_offer_post(order=patient_order, by=pharmacist) == offer
    assert offer.kind == MessageKind.COUNSELLING_OFFER
    assert offer.body == (
        f"Your order {patient_order.number} has been approved by our pharmacist. Do you have "
        "questions about your new medicine: how and when to take it, what side effects to look "
        "out for, or how it goes with your other medicines? Reply here and a pharmacist will "
        f"answer, or call us on {settings.PHARMACY_PHONE} to talk to a pharmacist."
    )
    assert notices(patient) == []  # the approval email announces it
    # The offer is no answer: the patient's question still waits in the inbox.
    assert offer.thread.awaiting_reply_since is not None


def test_no_counselling_offer_message_for_a_guest_order(patient, pharmacist, baclofen_90):
    guest = order_with_line(user=patient, tier=baclofen_90)
    guest.user = None
    guest.save(update_fields=["user"])
    assert rx_messages.counselling_offer_post(order=guest, by=pharmacist) is None
    assert not PatientMessage.objects.exists()
