"""The auto-refill job run twice at once (two beat/worker processes) places one order per due
prescription: real PostgreSQL row locks, two threads with their own connections."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from prescriptions import autorefill as service
from prescriptions.models import AutoRefillRun, OrderRefill

from .support import due_today, on_file, opt_in

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def run_at_once(target, n: int = 2) -> list:
    barrier = threading.Barrier(n)
    results: list = []

    def work():
        try:
            barrier.wait(timeout=10)
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_job_runs_at_once_place_one_order_per_due_prescription(localstripe, baclofen_90):
    autorefills = []
    for _ in range(3):
        record = on_file(localstripe, baclofen_90, filled_days_ago=25)
        autorefill = opt_in(localstripe, record, baclofen_90)
        due_today(autorefill)
        autorefills.append(autorefill)

    results = run_at_once(service.autorefills_place_due)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 3
    for autorefill in autorefills:
        runs = AutoRefillRun.objects.filter(autorefill=autorefill)
        assert runs.count() == 1 and runs.get().order is not None
        orders = OrderRefill.objects.filter(prescription=autorefill.prescription).exclude(
            order=autorefill.prescription.source_order
        )
        assert orders.count() == 1
    # A third run later the same day finds nothing due.
    assert service.autorefills_place_due() == 0


def test_one_prescription_placed_by_two_runs_at_once_is_placed_once(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    due_today(autorefill)
    results = run_at_once(lambda: service.autorefill_place(autorefill_id=autorefill.pk), n=4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r is not None]) == 1
    assert (
        OrderRefill.objects.filter(prescription=record).exclude(order=record.source_order).count()
        == 1
    )


def test_the_database_refuses_a_second_run_for_one_due_date(localstripe, baclofen_90):
    record = on_file(localstripe, baclofen_90, filled_days_ago=25)
    autorefill = opt_in(localstripe, record, baclofen_90)
    AutoRefillRun.objects.create(autorefill=autorefill, due_on=timezone.localdate())
    with pytest.raises(IntegrityError), transaction.atomic():
        AutoRefillRun.objects.create(autorefill=autorefill, due_on=timezone.localdate())
