#!/usr/bin/env python
"""The catalog's cache-miss path at 100,000 products, measured in-process (no wrk, no server).

Every request renders its page afresh (``CATALOG_PAGE_CACHE=0``), as a new search term or the
first request after a catalog change does; the per-generation memos (category counts, listing
index) stay on, as in production. Same settings as ``bench/bench.py``. For each of the large-
catalog pages of ``bench.py`` it prints the wall-clock p50/p90 of ``--requests`` requests, the CPU
per request (``time.process_time``: this process only, so other load on the machine barely moves
it; Django's Python, not PostgreSQL's; the mean of the least disturbed of ``--rounds`` rounds), the number of queries and their total SQL time, and with
``--explain`` the ``EXPLAIN (ANALYZE, BUFFERS)`` of each query (planning + execution time and the
plan's top lines). ``--profile N`` adds a cProfile of each page (N costliest functions).

    .venv/bin/python bench/miss.py --database-url postgres://postgres@127.0.0.1:5432/pharmacy_big_bigcat
    .venv/bin/python bench/miss.py --database-url ... --explain --pages search
    .venv/bin/python bench/miss.py --database-url ... --profile 30 --pages listing

The database must already hold the generated catalog (``bench/run.sh --large-only --products
100000`` or ``manage.py generate_catalog --products 100000 --tiers-per-product 10``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # the benchmark's settings and helpers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    bench.add_store_args(parser)
    parser.add_argument(
        "--requests", type=int, default=30, help="measured requests per page and round"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; CPU is the least disturbed round's mean"
    )
    parser.add_argument(
        "--pages",
        default="",
        help="only pages whose name starts with one of these (comma-separated)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) every query of each page"
    )
    parser.add_argument(
        "--plan-lines", type=int, default=6, help="plan lines shown per query with --explain"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile each page, N functions"
    )
    parser.add_argument("--migrate", action="store_true", help="run migrate first")
    return parser.parse_args()


def pages() -> list[tuple[str, str]]:
    """The pages ``bench.py`` measures on the large catalog (same URLs), a small category and home."""
    from django.db.models import Count
    from django.urls import reverse

    from catalog.models import Category, Product

    listing = reverse("catalog:product_list")
    products = Product.objects.filter(slug__startswith="bench-").count()
    last_page = -(-products // 24)
    last_name = Product.objects.filter(slug__startswith="bench-").order_by("slug").last().name
    return (
        [
            ("listing", listing),
            ("listing, page 200", listing + "?page=200"),
            (f"listing, page {last_page} (last)", listing + f"?page={last_page}"),
            ("search (common word)", listing + "?q=migraine"),
            ("search (one product)", listing + "?q=" + urllib.parse.quote(last_name)),
            (f"category ({products:,} products)", listing + "?category=benchmark"),
            ("price sort", listing + "?sort=price"),
            (f"price sort, page {last_page} (last)", listing + f"?sort=price&page={last_page}"),
        ]
        + [  # not in bench.py: the smallest category (a seek, not a scan, in a large catalog) and home
            (f"category ({c.n:,} products)", listing + "?category=" + urllib.parse.quote(c.slug))
            for c in Category.objects.annotate(n=Count("products")).order_by("n", "pk")[:1]
            if c.n < products
        ]
        + [("home", reverse("catalog:home"))]
    )


def explain(sql: str, params, *, lines: int) -> tuple[float, float, list[str]]:
    """(planning ms, execution ms, the plan's first lines) of one captured query."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    planning = next(
        (float(p.split(":")[1].split()[0]) for p in plan if p.startswith("Planning Time")), 0.0
    )
    execution = next(
        (float(p.split(":")[1].split()[0]) for p in plan if p.startswith("Execution Time")), 0.0
    )
    return planning, execution, plan[:lines]


class Recorder:
    """A database execute wrapper keeping each query's SQL, parameters and time (for EXPLAIN)."""

    def __init__(self):
        self.queries: list[tuple[str, object, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, params, (time.perf_counter() - started) * 1000))


def main() -> None:
    args = parse_args()
    env = bench.server_env(argparse.Namespace(**vars(args), no_page_cache=True))
    if args.migrate:
        bench.manage(env, "migrate", "--noinput")
    if not (bench.VAR / "static" / "staticfiles.json").exists():
        bench.manage(env, "collectstatic", "--noinput")
    bench.setup_django(env)

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    assert not settings.CATALOG_PAGE_CACHE, (
        "the page cache must be off: this measures the miss path"
    )
    client = Client()
    chosen = pages()
    if args.pages:
        wanted = [w.strip() for w in args.pages.split(",") if w.strip()]
        chosen = [p for p in chosen if any(p[0].startswith(w) for w in wanted)]
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
        f"{args.requests} requests per page, page cache off"
    )
    print(
        f"{'page':28} {'p50 ms':>7} {'p90 ms':>7} {'CPU ms':>7} {'queries':>7} {'SQL ms':>7} {'bytes':>8}  path"
    )
    for name, path in chosen:
        for _ in range(3):  # warm-up: memos, template loader, connection
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        walls, rounds = [], []
        for _ in range(args.rounds):
            cpu = time.process_time()
            for _ in range(args.requests):
                wall = time.perf_counter()
                client.get(path)
                walls.append((time.perf_counter() - wall) * 1000)
            rounds.append((time.process_time() - cpu) * 1000 / args.requests)
        recorder = Recorder()
        with connection.execute_wrapper(recorder):
            response = client.get(path)
        sql_ms = sum(q[2] for q in recorder.queries)
        walls.sort()
        print(
            f"{name:28} {statistics.median(walls):7.1f} {walls[int(len(walls) * 0.9) - 1]:7.1f} "
            f"{min(rounds):7.2f} {len(recorder.queries):7d} {sql_ms:7.1f} {len(response.content):8,}  {path}"
        )
        if args.explain:
            for sql, params, ms in recorder.queries:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                planning, execution, plan = explain(sql, params, lines=args.plan_lines)
                print(
                    f"    {ms:6.2f} ms from Django; EXPLAIN: planning {planning:.2f} + execution {execution:.2f} ms: "
                    f"{sql[:160]}"
                )
                for line in plan:
                    print(f"        {line}")
        if args.profile:
            bench.profile_requests(lambda path=path: client.get(path), args.requests, args.profile)


if __name__ == "__main__":
    main()
