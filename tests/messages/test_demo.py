"""The demo (issue 25): the demo patient has a question waiting; the pharmacist sees it in the inbox."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from prescriptions.models import MessageThread, PatientMessage

pytestmark = pytest.mark.django_db


def test_demo_patient_has_a_question_waiting_for_the_pharmacist(
    client, baclofen, settings, pharmacist
):
    settings.DEBUG = True
    call_command("setup_demo_prescriptions")
    call_command("setup_demo_prescriptions")  # idempotent: still one question
    question = PatientMessage.objects.get()
    thread = MessageThread.objects.get()
    assert thread.patient.email == "patient@pharmacy.example"
    assert question.sender == "patient" and "ibuprofen" in question.body
    assert question.prescription.medicine == "Baclofen"
    assert question.order == question.prescription.source_order
    assert thread.awaiting_reply_since is not None

    client.force_login(pharmacist)
    inbox = client.get(reverse("messaging:inbox")).content.decode()
    assert 'id="inbox-waiting">1<' in inbox and f'id="thread-{thread.patient_id}"' in inbox
    page = client.get(reverse("messaging:staff_thread", args=[thread.patient_id])).content.decode()
    assert "ibuprofen" in page and "the prescription for Baclofen 10mg" in page
