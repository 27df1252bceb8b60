"""The pharmacy's gauges, for staff (the admin index) and for Prometheus (``/metrics``).

The apps that own the numbers count them (``orders.gauges``, ``notifications.gauges``); this
module reads them, adds the Celery queue length, compares each with its threshold
(``GAUGE_THRESHOLDS``) and serves them. Request rate, latency and errors per view come from
django-prometheus's middleware and are served by the same endpoint.

``/metrics`` is not public: it answers a bearer token (``METRICS_TOKEN``) or a client in
``METRICS_ALLOWED_NETWORKS``, and is a plain 404 to anyone else. A reading that cannot be taken
(the database or Redis gone) is left out or reported as -1, never a 500 and never a hang.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connections, transaction
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pharmacy.celery import celery_queue_length

logger = logging.getLogger(__name__)

#: Celery queue length when Redis does not answer in time.
UNKNOWN = -1


@dataclass(frozen=True)
class Reading:
    key: str  # the Prometheus name after "pharmacy_" and the GAUGE_THRESHOLDS key
    label: str  # what staff read on the admin index
    value: float | None  # None: nothing to measure (e.g. no email waiting, so no oldest age)
    unit: str  # "count" | "seconds"
    threshold: float | None  # in the unit staff read: a count, hours or minutes
    warn: bool
    link: str = ""  # the admin or staff page that lists what is counted

    @property
    def display(self) -> str:
        if self.value is None:
            return "none"
        if self.value == UNKNOWN:
            return "unknown"
        if self.unit == "seconds":
            return _duration(self.value)
        return f"{int(self.value):,}"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days {hours % 24} h"


def _reading(
    key: str, label: str, value, *, unit: str = "count", scale: float = 1, link: str = ""
) -> Reading:
    """``scale``: seconds per threshold unit (3600 for a threshold in hours)."""
    threshold = settings.GAUGE_THRESHOLDS.get(key)
    warn = (
        value is not None
        and threshold is not None
        and (value == UNKNOWN or value >= threshold * scale)
    )
    return Reading(
        key=key, label=label, value=value, unit=unit, threshold=threshold, warn=warn, link=link
    )


def gauge_readings(*, now: datetime | None = None) -> list[Reading]:
    """Every gauge now, in the order staff read them (five queries and, with Redis, one LLEN)."""
    from django.urls import reverse

    from notifications.gauges import UNSENT_STATUSES, outbox_health
    from orders.gauges import order_gauges

    now = now or timezone.now()
    orders, outbox, queue = (
        order_gauges(now=now),
        outbox_health(),
        celery_queue_length(unknown=UNKNOWN),
    )
    oldest_unsent = (
        outbox.oldest_unsent_age.total_seconds() if outbox.oldest_unsent_age is not None else None
    )
    emails = reverse("admin:notifications_outboundemail_changelist")
    unsent = ",".join(UNSENT_STATUSES)
    events = reverse("admin:orders_stripeevent_changelist")
    readings = [
        _reading(
            "review_queue_length",
            "Orders waiting for pharmacist review",
            orders.review_queue_length,
            link=reverse("prescriptions:review_queue"),
        ),
        _reading(
            "review_oldest_hours",
            "Longest wait for review (since the card hold began)",
            orders.review_oldest_age,
            unit="seconds",
            scale=3600,
            link=reverse("prescriptions:review_queue"),
        ),
        _reading(
            "holds_lapsing",
            f"Card holds lapsing within {settings.AUTHORISATION_WARNING_HOURS} hours",
            orders.holds_lapsing,
            link=reverse("prescriptions:review_queue"),
        ),
        _reading(
            "emails_unsent",
            "Emails not sent yet (queued or waiting to retry)",
            outbox.unsent,
            link=f"{emails}?status__in={unsent}",
        ),
        _reading(
            "emails_oldest_unsent_minutes",
            "Oldest unsent email",
            oldest_unsent,
            unit="seconds",
            scale=60,
            link=f"{emails}?status__in={unsent}",
        ),
        _reading(
            "emails_failed",
            "Emails that failed for good (resend them)",
            outbox.failed,
            link=f"{emails}?status__exact=failed",
        ),
        _reading(
            "stripe_events_unprocessed",
            "Stripe events not processed",
            orders.stripe_events_unprocessed,
            link=f"{events}?processed__exact=0",
        ),
    ]
    if queue is not None:
        readings.append(
            _reading("celery_queue_length", "Background tasks waiting for a worker", queue)
        )
    return readings


#: Prometheus names: a reading's key in base units (seconds, not the hours staff read).
METRIC_NAMES = {
    "review_oldest_hours": "review_oldest_age_seconds",
    "emails_oldest_unsent_minutes": "emails_oldest_unsent_age_seconds",
}


def _bounded_readings() -> list[Reading]:
    """The readings with each query bounded by METRICS_STATEMENT_TIMEOUT: a stuck database must not
    hold a web worker for a scrape (Prometheus gives up after its own scrape timeout anyway)."""
    connection = connections["default"]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(  # set_config: SET takes no bound parameter
                    "SELECT set_config('statement_timeout', %s, true)",
                    [str(int(settings.METRICS_STATEMENT_TIMEOUT * 1000))],
                )
        return gauge_readings()


class PharmacyCollector:
    """Reads the gauges at each scrape (nothing is kept between scrapes)."""

    def collect(self):
        try:
            readings = _bounded_readings()
        except Exception:  # the database is down: the request metrics still answer
            logger.exception("Pharmacy gauges could not be read")
            up = GaugeMetricFamily("pharmacy_gauges_up", "1 if the pharmacy's gauges could be read")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("pharmacy_gauges_up", "1 if the pharmacy's gauges could be read")
        up.add_metric([], 1)
        yield up
        for reading in readings:
            if reading.value is None:
                continue  # no oldest age when nothing waits: absent, not zero
            name = f"pharmacy_{METRIC_NAMES.get(reading.key, reading.key)}"
            family = GaugeMetricFamily(name, reading.label)
            family.add_metric([], reading.value)
            yield family


def _registry() -> CollectorRegistry:
    """Request metrics (all processes' when PROMETHEUS_MULTIPROC_DIR is set) plus the pharmacy's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return registry


_pharmacy = CollectorRegistry(auto_describe=False)
_pharmacy.register(PharmacyCollector())


def _allowed(request) -> bool:
    """The token, or a direct connection from an allowed network.

    A request that came through the reverse proxy (it carries ``X-Forwarded-For``) has the proxy's
    address as its peer, so for it only the token counts: allowing 127.0.0.1 must not open
    ``/metrics`` to the internet through the proxy.
    """
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if (
        token
        and given.startswith("Bearer ")
        and hmac.compare_digest(given[7:].strip().encode(), token.encode())
    ):
        return True
    if "x-forwarded-for" in request.headers:
        return False
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        client in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


@never_cache
@require_safe
def metrics_view(request):
    if not _allowed(request):
        raise Http404  # the same answer as for a page that does not exist
    body = generate_latest(_registry()) + generate_latest(_pharmacy)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
