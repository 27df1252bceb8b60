#!/usr/bin/env python
"""Catalog pages while checkouts hang on Stripe: two sync workers (before) against gunicorn.conf.py (threads).

A TCP server that accepts and never answers stands in for Stripe (``STRIPE_API_BASE``), with the
production timeouts (4 s per attempt, one retry). ``--stuck`` customers pay at once; as soon as all
of them wait on Stripe, the home page and the product list are fetched one after the other
(``--rounds`` times each) and their times reported, next to the same pages with nothing stuck.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pharmacy_bench_hang .venv/bin/python bench/stripe_hang.py

The database is created and migrated if needed; the script takes about 40 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pharmacy_bench_hang")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
os.environ.pop("REDIS_URL", None)  # database sessions: the carts made here are the server's


def ensure_database(url: str) -> None:
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(url.replace(parts.path, "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def timed_get(session, url: str) -> float:
    started = time.monotonic()
    response = session.get(url, timeout=60)
    response.raise_for_status()
    return time.monotonic() - started


def run(label: str, gunicorn_args: tuple[str, ...], tier, args, tmp: Path) -> None:
    import requests

    from tests.live_gunicorn import (
        Gunicorn,
        SilentServer,
        checkout_form,
        customer_with_cart,
        post_checkout,
        server_env,
    )

    stripe_api = SilentServer()
    env = server_env(STRIPE_API_BASE=stripe_api.base, WEB_CONCURRENCY=str(args.workers))
    customers = [customer_with_cart(tier) for _ in range(args.stuck)]
    with Gunicorn(env=env, log=tmp / f"{label}.log", args=gunicorn_args) as server:
        visitor = requests.Session()
        pages = [server.base + "/", server.base + "/products/"]
        for page in pages:
            timed_get(visitor, page)  # warm
        idle = [timed_get(visitor, page) for _ in range(args.rounds) for page in pages]
        forms = [checkout_form(customer, server.base) for customer in customers]
        outcomes: list[dict] = [{} for _ in customers]
        threads = [
            threading.Thread(target=post_checkout, args=(c, server.base, f, o))
            for c, f, o in zip(customers, forms, outcomes)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while (
            len(stripe_api.accepted) < min(args.stuck, args.workers)
            and time.monotonic() - started < 10
        ):
            time.sleep(0.01)
        stuck = [timed_get(visitor, page) for _ in range(args.rounds) for page in pages]
        waiting = sum(1 for outcome in outcomes if not outcome)
        for thread in threads:
            thread.join()
        stripe_api.close()
    checkout = [o["seconds"] for o in outcomes]
    print(
        f"{label:<28} idle median {statistics.median(idle) * 1000:6.0f} ms | "
        f"{args.stuck} checkouts on a hung Stripe: catalog median {statistics.median(stuck) * 1000:6.0f} ms, "
        f"first {stuck[0] * 1000:6.0f} ms, max {max(stuck) * 1000:6.0f} ms "
        f"({waiting} checkouts still waiting after the catalog requests) | checkout answered in "
        f"{min(checkout):.1f}-{max(checkout):.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stuck", type=int, default=2, help="checkouts waiting on Stripe at once")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command
    from djmoney.money import Money

    from catalog.models import LegalClass
    from tests.factories import DosageFactory, PackageTierFactory, ProductFactory

    call_command("migrate", "--noinput", verbosity=0)
    from catalog.models import PackageTier

    tier = PackageTier.objects.filter(sku="HANG-10-30").first() or PackageTierFactory(
        dosage=DosageFactory(
            product=ProductFactory(
                name="Loratadine", slug="loratadine-bench", legal_class=LegalClass.GENERAL_SALE
            ),
            strength="10mg",
            list_price_per_pill=Money("0.50000", "USD"),
        ),
        quantity=30,
        price=Money("12.00", "USD"),
        sku="HANG-10-30",
        stock=None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run(
            "before: sync workers",
            ("--worker-class", "sync", "--threads", "1"),
            tier,
            args,
            Path(tmp),
        )
        run("after: gunicorn.conf.py", (), tier, args, Path(tmp))


if __name__ == "__main__":
    main()
