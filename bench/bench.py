#!/usr/bin/env python
"""Benchmark the shop as deployed: gunicorn, DEBUG=0, PostgreSQL, Redis cache and sessions.

One command (``bench/run.sh`` or ``.venv/bin/python bench/bench.py``):

1. creates the PostgreSQL database if needed (``--database-url``), migrates, loads the demo
   catalog (fixture ``demo_catalog``; ``generate_catalog`` if the fixture is missing);
2. runs ``collectstatic`` and starts gunicorn on 127.0.0.1:8107 with the production settings
   (``PRODUCTION=1``; only HTTPS-specific settings are off, since this is plain HTTP on loopback);
3. measures each page with ``wrk`` for a fixed duration after a short warm-up: requests/s and
   p50/p99 latency, compared with a trivial Django view in the same deployment (the ceiling);
4. generates the 10,000-product catalog and measures listing and search again;
5. counts the SQL queries of each page in-process (``CaptureQueriesContext``), and prints the
   slowest page's slowest statements.

Pages that do not exist yet (404) are skipped and reported as such. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
VAR = BASE_DIR / "var" / "bench"
# The shop measured: this checkout, or another one (``--checkout PATH``: an older commit in its own
# ``git worktree``, or another branch), so both run under the same benchmark code side by side.
APP_DIR = BASE_DIR
HOST = "127.0.0.1"
BENCH_EMAIL = "bench-customer@example.com"
BENCH_PASSWORD = "correct horse battery staple bench"


@dataclass
class Page:
    name: str
    path: str
    method: str = "GET"
    body: str = ""
    session: str = (
        "anonymous"  # "anonymous", "customer" (logged in, one cart line), "new" (CSRF only)
    )
    catalog: str = "demo"
    status: int | None = None
    skipped: str = ""
    result: dict = field(default_factory=dict)
    queries: int | None = None
    sql_ms: float | None = None


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def add_store_args(parser: argparse.ArgumentParser) -> None:
    """The database and Redis the benchmark uses (shared with ``bench/cpu.py``)."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pharmacy_bench"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="a Redis database used only by the benchmark (it is flushed)",
    )


def add_checkout_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkout",
        type=Path,
        default=None,
        help="measure the shop in this folder (another git worktree) instead of this one; "
        "its static files go to var/bench/static-<folder name> here",
    )


def use_checkout(path: Path | None) -> None:
    """Point the server, ``manage.py`` and in-process Django at the checkout in ``path``."""
    global APP_DIR
    if path is not None:
        APP_DIR = path.resolve()
        if not (APP_DIR / "manage.py").exists():
            raise SystemExit(f"{APP_DIR} holds no manage.py")


def static_root() -> Path:
    return VAR / ("static" if APP_DIR == BASE_DIR else f"static-{APP_DIR.name}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_store_args(parser)
    add_checkout_arg(parser)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8107")))
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="gunicorn workers (2 x cores)",
    )
    parser.add_argument(
        "--connections", type=int, default=0, help="concurrent connections (default 2 x workers)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per page")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up per page, not measured"
    )
    parser.add_argument("--products", type=int, default=10_000, help="size of the large catalog")
    parser.add_argument("--tiers-per-product", type=int, default=10)
    parser.add_argument(
        "--skip-large", action="store_true", help="do not generate the large catalog"
    )
    parser.add_argument(
        "--no-page-cache",
        action="store_true",
        help="CATALOG_PAGE_CACHE=0: every catalog page rendered afresh (the cache-miss path)",
    )
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="send Accept-Encoding: gzip as browsers do (catalog pages then answer compressed)",
    )
    parser.add_argument(
        "--large-only",
        action="store_true",
        help="measure only the large catalog, reusing it if the database already holds it",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="only these pages (comma-separated name prefixes, e.g. 'cart,checkout'); the ceiling always",
    )
    parser.add_argument(
        "--json", type=Path, default=VAR / "results.json", help="where to write the figures"
    )
    return parser.parse_args()


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """Production settings, minus what needs HTTPS (this is plain HTTP on the loopback)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(
        PRODUCTION="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS=f"{HOST},testserver",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        # No worker runs during the benchmark: tasks run in-process instead of piling up.
        CELERY_TASK_ALWAYS_EAGER="1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        BEHIND_PROXY="0",
        BENCH_CEILING="1",
        LOG_LEVEL="WARNING",
        ACCESS_LOG="",  # no access log: its disk writes are not what is measured
        STATIC_ROOT=str(static_root()),
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        # Nothing may leave the machine: a Stripe call would fail fast on a closed local port.
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_PUBLISHABLE_KEY="pk_test_bench",
        STRIPE_WEBHOOK_SECRET="whsec_bench",
        STRIPE_API_BASE="http://127.0.0.1:9",
        AXES_ENABLED="0",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="pharmacy.settings",
    )
    if getattr(args, "no_page_cache", False):
        env["CATALOG_PAGE_CACHE"] = "0"
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=APP_DIR,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_database(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def start_gunicorn(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    VAR.mkdir(parents=True, exist_ok=True)
    with open(
        VAR / "gunicorn.log", "w"
    ) as log_file:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(gunicorn),
                "pharmacy.wsgi:application",
                "--bind",
                f"{HOST}:{args.port}",
                "--workers",
                str(args.workers),
                "--timeout",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=APP_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://{HOST}:{args.port}"
    for _ in range(150):
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {VAR / 'gunicorn.log'}")
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- In-process Django (same settings and database as the server) ------------------------------


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    # Celery's Django fix-up puts the working directory first on sys.path: the checkout measured.
    os.chdir(APP_DIR)
    sys.path.insert(0, str(APP_DIR))
    import django

    django.setup()


def pick_orderable_tier() -> int | None:
    """An active pack of a product anyone may buy without a prescription (so checkout is plain)."""
    from catalog.models import LegalClass, PackageTier

    tiers = PackageTier.objects.filter(
        is_active=True,
        dosage__product__is_published=True,
        dosage__product__legal_class__in=[LegalClass.GENERAL_SALE, LegalClass.PHARMACY],
    ).order_by("dosage__product__slug", "id")
    tier = tiers.exclude(dosage__product__slug__startswith="bench-").first() or tiers.first()
    return tier.pk if tier else None


def customer_session_cookie() -> str:
    """A logged-in customer's session, created like Django's test client does (same session store)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    user = User.objects.filter(email=BENCH_EMAIL).first()
    if user is None:
        user = User.objects.create_user(
            email=BENCH_EMAIL, password=BENCH_PASSWORD, first_name="Bench", last_name="Customer"
        )
    client = Client()
    client.force_login(user)
    from django.conf import settings

    return client.cookies[settings.SESSION_COOKIE_NAME].value


def count_queries(
    page: Page, cookies: dict[str, str]
) -> tuple[int, float, list[tuple[float, str]]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(enforce_csrf_checks=False)
    for name, value in cookies.items():
        client.cookies[name] = value
    with CaptureQueriesContext(connection) as captured:
        if page.method == "POST":
            client.post(page.path, data=dict(urllib.parse.parse_qsl(page.body)))
        else:
            client.get(page.path)
    timed = sorted(
        ((float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries), reverse=True
    )
    return len(timed), sum(t for t, _ in timed), timed


def profile_requests(request, count: int, top: int) -> None:
    """cProfile ``count`` calls of ``request()`` and print the ``top`` costliest functions, cumulative and own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(
        time.process_time
    )  # CPU, as the figures: not the waits on PostgreSQL or Redis
    profiler.enable()
    for _ in range(count):
        request()
    profiler.disable()
    stats = pstats.Stats(profiler)
    if os.environ.get("BENCH_PROFILE_DUMP"):  # for pstats or a side-by-side diff of two commits
        stats.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    if os.environ.get("BENCH_PROFILE_CALLERS"):
        stats.print_callers(os.environ["BENCH_PROFILE_CALLERS"])
    if os.environ.get("BENCH_PROFILE_CALLEES"):
        stats.print_callees(os.environ["BENCH_PROFILE_CALLEES"])


# --- HTTP ------------------------------------------------------------------------------------


def run_wrk(
    base: str,
    page: Page,
    *,
    seconds: int,
    connections: int,
    cookie: str,
    csrf: str,
    accept_encoding: str = "",
    timeout_s: int = 5,
) -> dict:
    env = {
        **os.environ,
        "BENCH_METHOD": page.method,
        "BENCH_BODY": page.body,
        "BENCH_COOKIE": cookie,
        "BENCH_CSRF": csrf,
        "BENCH_ACCEPT_ENCODING": accept_encoding,
    }
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{timeout_s}s",
            "-s",
            str(BENCH_DIR / "report.lua"),
            base + page.path,
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk failed for {page.path}:\n{result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["p50_ms"] = data["p50_us"] / 1000
    data["p99_ms"] = data["p99_us"] / 1000
    return data


def session_for(page: Page, sessions: dict[str, dict[str, str]]) -> dict[str, str]:
    return sessions.get(page.session, {})


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def probe(base: str, page: Page, cookies: dict[str, str]) -> int:
    headers = {"X-CSRFToken": cookies.get("csrftoken", ""), "Referer": base + "/"}
    response = requests.request(
        page.method,
        base + page.path,
        data=page.body or None,
        cookies=cookies,
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    return response.status_code


def measure(
    base: str, pages: list[Page], sessions: dict, args: argparse.Namespace, connections: int
) -> None:
    for page in pages:
        cookies = session_for(page, sessions)
        page.status = probe(base, page, cookies)
        if page.status == 404:
            page.skipped = "404: page not built yet"
        elif page.status >= 500:
            page.skipped = f"{page.status}: server error (see var/bench/gunicorn.log)"
        elif page.status >= 400:
            page.skipped = f"{page.status}"
        if page.skipped:
            log(f"skip {page.name} ({page.path}): {page.skipped}")
            continue
        log(f"measure {page.name} {page.method} {page.path} (status {page.status})")
        kwargs = {
            "connections": connections,
            "cookie": cookie_header(cookies),
            "csrf": cookies.get("csrftoken", ""),
            "accept_encoding": "gzip, deflate, br" if getattr(args, "gzip", False) else "",
        }
        if args.warmup:
            run_wrk(base, page, seconds=args.warmup, **kwargs)
        page.result = run_wrk(base, page, seconds=args.duration, **kwargs)


def analyse_queries(pages: list[Page], sessions: dict) -> None:
    for page in pages:
        if page.skipped or page.name == "ceiling":
            continue
        page.queries, page.sql_ms, _ = count_queries(page, session_for(page, sessions))


def print_table(pages: list[Page]) -> str:
    ceiling = next((p.result["rps"] for p in pages if p.name == "ceiling" and p.result), None)
    lines = [
        "| page | catalog | request | status | req/s | p50 ms | p99 ms | ratio to ceiling | queries | errors |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in pages:
        request = f"{p.method} {p.path}"
        if p.skipped:
            lines.append(
                f"| {p.name} | {p.catalog} | `{request}` | skipped: {p.skipped} | | | | | | |"
            )
            continue
        r = p.result
        ratio = f"{r['rps'] / ceiling:.2f}" if ceiling else ""
        errors = r["errors_status"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
        queries = "" if p.queries is None else str(p.queries)
        lines.append(
            f"| {p.name} | {p.catalog} | `{request}` | {p.status} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {ratio} | {queries} | {errors} |"
        )
    table = "\n".join(lines)
    print(table)
    return table


def main() -> None:
    args = parse_args()
    args.json = args.json.resolve()  # before setup_django changes the working directory
    use_checkout(args.checkout)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    connections = args.connections or 2 * args.workers
    env = server_env(args)
    VAR.mkdir(parents=True, exist_ok=True)

    log(
        f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    ensure_database(args.database_url)
    flush_redis(args.redis_url)
    log("migrate, catalog, collectstatic")
    manage(env, "migrate", "--noinput")
    if not args.large_only:
        manage(env, "generate_catalog", "--delete")
    if args.large_only:
        demo = "none"
    elif (APP_DIR / "fixtures" / "demo_catalog.json").exists():
        manage(env, "loaddata", "demo_catalog")
        demo = "demo"
    else:
        log("fixture demo_catalog missing: using a small generated catalog instead")
        manage(env, "generate_catalog", "--products", "40", "--tiers-per-product", "6")
        demo = "generated-40"
    manage(env, "collectstatic", "--noinput")

    setup_django(env)
    from django.urls import NoReverseMatch, reverse

    from catalog.models import Product

    def url(name: str, **kwargs) -> str | None:
        try:
            return reverse(name, kwargs=kwargs or None)
        except NoReverseMatch:
            return None

    product = (
        Product.objects.published().filter(slug="baclofen").first()
        or Product.objects.published().first()
    )
    tier_id = pick_orderable_tier()
    customer_cookie = customer_session_cookie()

    proc = start_gunicorn(args, env)
    base = f"http://{HOST}:{args.port}"
    try:
        # Sessions: a CSRF cookie for a new visitor (each POST starts a new session and cart), and a
        # logged-in customer with one line in the cart for the cart and checkout pages.
        visitor = requests.Session()
        visitor.get(base + "/", timeout=10)
        csrf = visitor.cookies.get("csrftoken", "")
        customer = {"sessionid": customer_cookie, "csrftoken": csrf}
        add_path = url("cart:add") or "/cart/add/"
        add_body = urllib.parse.urlencode({"tier_id": tier_id or 0, "packages": 1})
        if tier_id:
            requests.post(
                base + add_path,
                data=add_body,
                cookies=customer,
                allow_redirects=False,
                timeout=10,
                headers={
                    "X-CSRFToken": csrf,
                    "Referer": base + "/",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        sessions = {"anonymous": {}, "new": {"csrftoken": csrf}, "customer": customer}

        pages = [
            Page("ceiling", "/bench/ceiling/"),
            Page("home", url("catalog:home") or "/"),
            Page("listing", url("catalog:product_list") or "/products/"),
            Page("search", (url("catalog:product_list") or "/products/") + "?q=pain"),
            Page("product", product.get_absolute_url() if product else "/products/baclofen/"),
            Page("home (signed in, cart)", url("catalog:home") or "/", session="customer"),
            Page(
                "listing (signed in, cart)",
                url("catalog:product_list") or "/products/",
                session="customer",
            ),
            Page(
                "product (signed in, cart)",
                product.get_absolute_url() if product else "/products/baclofen/",
                session="customer",
            ),
            Page(
                "add to cart (new visitor)", add_path, method="POST", body=add_body, session="new"
            ),
            Page("cart (1 line)", url("cart:detail") or "/cart/", session="customer"),
            Page(
                "checkout (signed in)", url("checkout:checkout") or "/checkout/", session="customer"
            ),
        ]
        for page in pages:
            page.catalog = demo
        if args.pages:
            wanted = [w.strip() for w in args.pages.split(",") if w.strip()]
            pages = [
                p for p in pages if p.name == "ceiling" or any(p.name.startswith(w) for w in wanted)
            ]
        if args.large_only:
            pages = [pages[0]]  # the ceiling only
        measure(base, pages, sessions, args, connections)

        if not args.skip_large:
            existing = Product.objects.filter(slug__startswith="bench-").count()
            if args.large_only and existing == args.products:
                log(f"reusing the {existing} benchmark products already there")
            else:
                log(f"generating {args.products} products x {args.tiers_per_product} tiers")
                started = time.perf_counter()
                manage(env, "generate_catalog", "--delete")
                out = manage(
                    env,
                    "generate_catalog",
                    "--products",
                    str(args.products),
                    "--tiers-per-product",
                    str(args.tiers_per_product),
                )
                log(out.strip() + f" (command total {time.perf_counter() - started:.1f}s)")
            manage(
                env,
                "shell",
                "-c",
                "from django.db import connection; connection.cursor().execute('VACUUM ANALYZE')",
            )
            listing = url("catalog:product_list") or "/products/"
            last_page = -(-args.products // 24)
            large = [
                Page("listing", listing),
                Page("listing, page 200", listing + "?page=200"),
                Page(f"listing, page {last_page} (last)", listing + f"?page={last_page}"),
                Page("search (common word)", listing + "?q=migraine"),
                Page(
                    "search (one product)",
                    listing
                    + "?q="
                    + urllib.parse.quote(
                        Product.objects.filter(slug__startswith="bench-")
                        .order_by("slug")
                        .last()
                        .name
                    ),
                ),
                Page(f"category ({args.products:,} products)", listing + "?category=benchmark"),
                Page("price sort", listing + "?sort=price"),
                Page(
                    f"price sort, page {last_page} (last)",
                    listing + f"?sort=price&page={last_page}",
                ),
            ]
            for page in large:
                page.catalog = f"{args.products:,} products"
            measure(base, large, sessions, args, connections)
            pages += large
    finally:
        stop(proc)

    load = os.getloadavg()
    log(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs "
        "(anything else running on the machine lowers every figure)"
    )
    log("counting queries in-process (CaptureQueriesContext)")
    analyse_queries(pages, sessions)
    print()
    table = print_table(pages)
    measured = [p for p in pages if p.result and p.name != "ceiling"]
    if measured:
        slowest = min(measured, key=lambda p: p.result["rps"])
        n, total, timed = count_queries(slowest, session_for(slowest, sessions))
        print(
            f"\nSlowest page: {slowest.name} ({slowest.catalog}) {slowest.path}: {n} queries, {total:.1f} ms of SQL"
        )
        for ms, sql in timed[:5]:
            print(f"  {ms:7.1f} ms  {sql[:300]}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "workers": args.workers,
                "connections": connections,
                "load_average": load,
                "duration_s": args.duration,
                "cpus": os.cpu_count(),
                "pages": [
                    {
                        "name": p.name,
                        "catalog": p.catalog,
                        "method": p.method,
                        "path": p.path,
                        "status": p.status,
                        "skipped": p.skipped,
                        "queries": p.queries,
                        "sql_ms": p.sql_ms,
                        **p.result,
                    }
                    for p in pages
                ],
                "table": table,
            },
            indent=2,
        )
    )
    log(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
