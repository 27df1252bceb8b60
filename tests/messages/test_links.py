"""Where the conversation is reached from (issue 25): the review page, a prescription on file."""

import pytest
from django.urls import reverse

from prescriptions import messages as rx_messages
from tests.prescriptions.refills.support import approve_first_order

from .conftest import order_with_line

pytestmark = pytest.mark.django_db


def test_the_review_page_links_the_patients_messages_with_the_unread_count(
    client, patient, pharmacist, patient_order, baclofen_90
):
    rx_messages.message_post_by_patient(patient=patient, body="A question", order=patient_order)
    client.force_login(pharmacist)
    page = client.get(reverse("prescriptions:review_order", args=[patient_order.number]))
    link = reverse("messaging:staff_thread", args=[patient.pk])
    assert f'href="{link}?order={patient_order.number}#latest"' in page.content.decode()
    assert "Messages with this patient (1 unread)" in page.content.decode()

    guest = order_with_line(user=patient, tier=baclofen_90)
    guest.user = None
    guest.save(update_fields=["user"])
    page = client.get(reverse("prescriptions:review_order", args=[guest.number]))
    assert "Guest order: no account to message" in page.content.decode()


def test_a_prescription_on_file_is_asked_about_from_its_page(
    client, localstripe, baclofen_90, patient, other_patient
):
    _, _, record = approve_first_order(localstripe, baclofen_90, user=patient)
    client.force_login(patient)
    detail = client.get(reverse("refills:detail", args=[record.pk])).content.decode()
    ask = f"{reverse('messaging:thread')}?prescription={record.pk}#latest"
    assert f'href="{ask}"' in detail
    page = client.get(reverse("messaging:thread"), {"prescription": record.pk}).content.decode()
    assert f'<option value="rx:{record.pk}" selected>Prescription: Baclofen 10mg</option>' in page
    client.force_login(other_patient)
    assert client.get(reverse("messaging:thread"), {"prescription": record.pk}).status_code == 404
