"""The cart page's queries are planned once per connection, not on every visit.

PostgreSQL took longer to plan the cart's lines query (a join through pack, dosage and product)
than to run it. With parameters bound by the server (``DATABASE_PREPARED_STATEMENTS``, on by
default), psycopg prepares a query the sixth time a connection sends it and PostgreSQL keeps its
plan; these tests fail if the settings stop doing that, and show the switch for PgBouncer.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from djmoney.money import Money

from tests.factories import PackageTierFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def cart_lines_statements() -> list[str]:
    return [sql for sql in prepared_statements() if 'FROM "cart_cartline"' in sql]


def test_the_cart_lines_query_is_prepared_from_the_sixth_visit():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL setting")
    tier = PackageTierFactory(quantity=30, price=Money("12.00", "USD"))
    client = Client()
    client.force_login(UserFactory())
    assert client.post("/cart/add/", {"tier_id": tier.pk, "packages": 1}).status_code == 302
    for _ in range(5):
        response = client.get("/cart/")
        assert response.status_code == 200 and "30 pills per pack" in response.text
    assert cart_lines_statements() == []  # five runs: still planned each time
    response = client.get("/cart/")
    assert response.status_code == 200 and "30 pills per pack" in response.text
    [statement] = cart_lines_statements()
    assert '"cart_cart"."user_id" = $1' in statement  # the customer's id is a bound parameter


def settings_options(**env: str) -> str:
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'pharmacy.settings'; "
        "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS'))"
    )
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_pgbouncer_deployments_can_turn_prepared_statements_off():
    url = "postgres://pharmacy@db.internal:5432/pharmacy"
    assert settings_options(DATABASE_URL=url) == (
        "{'server_side_binding': True, 'prepare_threshold': 5}"
    )
    assert settings_options(DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0") == "None"
    # The demo's SQLite has no such thing.
    assert "server_side_binding" not in settings_options(DATABASE_URL="sqlite:///demo.sqlite3")
