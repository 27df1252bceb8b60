"""Orders to email about, and Celery forced in-process for the unit tests."""

from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from catalog.models import PackageTier
from orders.models import Order, OrderLine, OrderNumber
from orders.state import OrderStatus, PaymentStatus
from pharmacy.celery import app as celery_app


def make_order(*, product, lines: int = 2, email: str = "alex@example.com", **fields) -> Order:
    """An authorised order for ``product`` built straight from the orders models."""
    tiers = list(
        PackageTier.objects.filter(dosage__product=product).select_related("dosage")[:lines]
    )
    assert len(tiers) == lines, "the product has too few tiers for this order"
    subtotal = sum((tier.price.amount for tier in tiers), Decimal("0.00"))
    shipping = Decimal("9.95")
    values = {
        "number": OrderNumber.objects.create().number,
        "email": email,
        "status": OrderStatus.AWAITING_REVIEW,
        "payment_status": PaymentStatus.AUTHORIZED,
        "ship_name": "Alex Morgan",
        "ship_line1": "12 Elm Street",
        "ship_city": "Albany",
        "ship_state": "NY",
        "ship_zip": "12207",
        "shipping_method": "standard",
        "subtotal": Money(subtotal, "USD"),
        "savings": Money("0.00", "USD"),
        "shipping": Money(shipping, "USD"),
        "total": Money(subtotal + shipping, "USD"),
        "has_prescription_items": product.requires_prescription,
    }
    values.update(fields)
    order = Order.objects.create(**values)
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            tier=tier,
            product_name=product.name,
            strength=tier.dosage.strength,
            pack_size=tier.quantity,
            packages=1,
            unit_price=tier.price,
            per_pill=Money((tier.price.amount / tier.quantity).quantize(Decimal("0.01")), "USD"),
            list_price=tier.price,
            line_total=tier.price,
            requires_prescription=product.requires_prescription,
        )
        for tier in tiers
    )
    return order


@pytest.fixture
def order(baclofen) -> Order:
    return make_order(product=baclofen)


@pytest.fixture(autouse=True)
def celery_in_process():
    """Unit tests run tasks in-process whatever REDIS_URL says (the integration test opts out)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def flaky_mail(settings, tmp_path, monkeypatch):
    """The file backend behind a mail server that is down for the first N sends (or until a time)."""
    settings.EMAIL_BACKEND = "tests.notifications.failing_backend.FlakyFileBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    monkeypatch.setenv("FLAKY_EMAIL_COUNTER", str(tmp_path / "attempts"))

    def fail_first(n: int, *, error: str = "disconnected"):
        monkeypatch.setenv("FLAKY_EMAIL_FAILURES", str(n))
        monkeypatch.setenv("FLAKY_EMAIL_ERROR", error)

    def down_until(moment: datetime, *, error: str = "disconnected"):
        monkeypatch.setenv("FLAKY_EMAIL_DOWN_UNTIL", str(moment.timestamp()))
        monkeypatch.setenv("FLAKY_EMAIL_ERROR", error)

    def delivered_ids() -> Counter:
        """How many times each outbox row (by id) reached the mail server."""
        return Counter(
            line.split(":", 1)[1].strip()
            for path in (tmp_path / "mail").glob("*.log")
            for line in path.read_text().splitlines()
            if line.startswith("X-Pharmacy-Email-Id:")
        )

    fail_first(0)
    fail_first.down_until = down_until
    fail_first.attempts = lambda: int((tmp_path / "attempts").read_text() or 0)
    fail_first.delivered_ids = delivered_ids
    fail_first.messages = lambda: "".join(
        path.read_text() for path in sorted((tmp_path / "mail").glob("*.log"))
    )
    fail_first.delivered = lambda: sum(delivered_ids().values())
    return fail_first
