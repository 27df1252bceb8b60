"""A view that logs and queues a task, to follow a request id from the request into a Celery task."""

import logging

from celery import shared_task
from django.http import HttpResponse
from django.urls import include, path

logger = logging.getLogger("tests.ops")
task_logger = logging.getLogger("tests.ops.task")


@shared_task(name="tests.ops.record_request_id")
def record_request_id() -> None:
    task_logger.info("task ran")


def log_and_queue(request):
    logger.info("view ran")
    record_request_id.delay()
    return HttpResponse("done")


urlpatterns = [
    path("log-and-queue/", log_and_queue),
    path("", include("pharmacy.urls")),
]
