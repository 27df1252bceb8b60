"""Error reports (Sentry) carry no health data: a real checkout with a prescription fails, and the
event the SDK would send holds no body, cookie, token, medicine, patient or email.

Events are kept in memory by a transport handed to ``sentry_sdk.init`` (the SDK's own seam for
where events go); everything else, the view, the form, the failure and the SDK, is real.
"""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, RequestFactory
from django.urls import reverse
from sentry_sdk.transport import Transport

from pharmacy.error_reports import sentry_init
from tests.orders.conftest import attach_to_session, make_cart, shown_figures
from tests.prescriptions.prescription_support import png_bytes, upload

pytestmark = pytest.mark.django_db

CSRF = "k" * 32  # a CSRF secret as the browser's cookie and form would carry it


class KeptInMemory(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        event = envelope.get_event()
        if event is not None:
            self.events.append(event)


@pytest.fixture
def reports():
    transport = KeptInMemory()
    sentry_init(dsn="https://public@errors.example/1", environment="test", transport=transport)
    yield transport.events
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: reporting off for the tests that follow


def _through_wsgi(request) -> tuple[int, dict[str, str]]:
    """The request as gunicorn hands it over (Django's WSGIHandler, which the SDK instruments)."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(
            status=int(status.split()[0]), headers={name.lower(): value for name, value in headers}
        )

    b"".join(WSGIHandler()(request.environ, start_response))
    return answer["status"], answer["headers"]


def test_a_failing_prescription_checkout_reports_the_error_without_health_data(
    reports, transactional_db, settings, tmp_path, localstripe, baclofen
):
    """Committed for real (transactional_db), so the prescription copy is written during the request."""
    tier = baclofen.dosages.first().tiers.first()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.PRIVATE_MEDIA_ROOT = blocker / "private"  # the disk refuses the prescription copy
    client = Client()
    attach_to_session(client, make_cart(tier=tier))
    session = client.cookies["sessionid"].value
    form = {
        "csrfmiddlewaretoken": CSRF,
        "email": "jane.patient@example.com",
        "name": "Jane Doe",
        "line1": "100 River Street",
        "city": "Albany",
        "state": "NY",
        "zip_code": "12207",
        "shipping_method": "standard",
        "figures": shown_figures(client),
        "patient_name": "Jane Doe",
        "date_of_birth": "1980-05-17",
        "allergies": "Penicillin (rash)",
        f"rx_{tier.pk}_method": "upload",
        f"rx_{tier.pk}_file": upload(png_bytes(), "jane baclofen.png", "image/png"),
    }
    request = RequestFactory().post(
        reverse("checkout:checkout") + "?t=signed-link-token",
        form,
        HTTP_COOKIE=f"sessionid={session}; csrftoken={CSRF}",
        HTTP_AUTHORIZATION="Bearer api-secret",
        HTTP_ACCEPT="application/json",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        HTTP_USER_AGENT="Test browser",
    )
    status, headers = _through_wsgi(request)
    assert status == 500
    assert len(reports) == 1
    event = reports[0]
    # Useful: what failed, where, on which page, and the request id that finds it in our logs.
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "NotADirectoryError"
    assert any(
        frame.get("module") == "checkout.views" for frame in exception["stacktrace"]["frames"]
    )
    assert (
        event["request"]["url"] == "http://testserver/checkout/"
        and event["request"]["method"] == "POST"
    )
    assert event["request"]["headers"]["User-Agent"] == "Test browser"
    assert event["tags"]["request_id"] == headers["x-request-id"]
    # Nothing else.
    assert set(event["request"]) == {"method", "url", "headers"}
    assert {name.lower() for name in event["request"]["headers"]} <= {
        "host",
        "user-agent",
        "accept",
        "content-type",
        "content-length",
        "x-request-id",
    }
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    assert "breadcrumbs" not in event and "user" not in event
    sent = json.dumps(event, default=str).lower()
    for secret in (
        "baclofen",
        "penicillin",
        "jane",
        "1980-05-17",
        "signed-link-token",
        "api-secret",
        CSRF.lower(),
        session.lower(),
        "198.51.100.7",
        "river street",
        "not-a-folder",
    ):
        assert secret not in sent, f"{secret!r} leaked into the error report"


def test_no_dsn_no_reports(settings):
    """Without SENTRY_DSN the SDK is never started: nothing could leave."""
    assert settings.SENTRY_DSN == "" and not sentry_sdk.get_client().is_active()
