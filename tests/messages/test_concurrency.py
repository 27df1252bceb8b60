"""Messages posted at the same moment, on real PostgreSQL threads: the thread row lock keeps one
conversation per patient and a waiting time that matches who wrote last."""

import threading

import pytest
from django.db import connection, connections

from prescriptions import messages as rx_messages
from prescriptions.models import MessageThread, PatientMessage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL"
)


def at_once(*actions) -> list:
    barrier = threading.Barrier(len(actions))
    results: list = []

    def run(action):
        try:
            barrier.wait(timeout=10)
            results.append(action())
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_first_messages_from_two_tabs_make_one_conversation(transactional_db, patient):
    results = at_once(
        lambda: rx_messages.message_post_by_patient(patient=patient, body="From the phone"),
        lambda: rx_messages.message_post_by_patient(patient=patient, body="From the laptop"),
    )
    assert all(isinstance(r, PatientMessage) for r in results), results
    thread = MessageThread.objects.get(patient=patient)
    first = thread.messages.order_by("id").first()
    assert thread.messages.count() == 2
    assert thread.awaiting_reply_since == first.created_at
    assert rx_messages.unread_for_pharmacy(patient) == 2


@pytest.mark.parametrize("round_", range(3))
def test_a_question_and_an_answer_at_once_leave_the_wait_matching_the_last_writer(
    transactional_db, patient, pharmacist, round_
):
    rx_messages.message_post_by_patient(patient=patient, body="First question")
    results = at_once(
        lambda: rx_messages.message_post_by_patient(patient=patient, body="Another question"),
        lambda: rx_messages.message_post_by_pharmacist(
            patient=patient, by=pharmacist, body="An answer"
        ),
    )
    assert all(isinstance(r, PatientMessage) for r in results), results
    thread = MessageThread.objects.get(patient=patient)
    last = thread.messages.order_by("-id").first()
    assert thread.last_message_at == last.created_at
    if last.sender == "pharmacy":
        assert thread.awaiting_reply_since is None
    else:
        assert thread.awaiting_reply_since == last.created_at
