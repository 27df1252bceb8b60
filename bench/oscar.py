#!/usr/bin/env python
"""Side by side: this shop and a stock django-oscar 4.x shop, same machine, same gunicorn settings.

    .venv/bin/python bench/oscar.py [--duration 10] [--rounds 2]

1. makes a virtualenv in a temporary folder and installs django-oscar 4.x, sorl-thumbnail,
   gunicorn and psycopg into it from the package index pip is configured with (nothing of Oscar
   enters this project's environment);
2. writes a minimal Oscar project there (Oscar's documented settings, stock templates, its default
   local-memory cache), migrates it into its own PostgreSQL database and loads a pharmacy-like
   catalog: 50 medicines, each a parent product with 12 child products (strength × pack size) with
   a price and stock;
3. prepares this shop as ``bench/bench.py`` does (demo catalog, production settings,
   ``collectstatic``) and a signed-in customer with 3 lines in the cart; Oscar gets the same
   (a user whose basket holds 3 products, a shipping country);
4. runs this shop twice, with its two settings: local-memory cache and database sessions (no
   ``REDIS_URL``, as the demo) and Redis for cache and sessions (as production), and Oscar, all
   with the same gunicorn settings (``--workers`` sync workers, no worker recycling, no access
   log), and measures, rounds alternated, product, listing, search, home, cart (3 lines) and
   checkout with ``wrk`` at the same concurrency, plus this shop's trivial view (the ceiling) in
   each setting. Per page: req/s (median and range of the rounds), the ratio to Oscar, the share
   of the same setting's ceiling, and the servers' CPU per request (user + system time of the
   gunicorn processes from ``/proc`` over the measured run, divided by the requests answered).

Not part of the test suite. Only 127.0.0.1 is contacted, apart from pip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # bench/bench.py: same server settings, wrk runner and table

OSCAR_REQUIREMENTS = [
    "django-oscar>=4,<5",
    "sorl-thumbnail>=12",
    "whoosh>=2.7",
    "gunicorn>=22",
    "psycopg[binary]>=3.1",
]

SETTINGS = """
import os
from oscar.defaults import *  # noqa: F401,F403

SECRET_KEY = "oscar-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
SITE_ID = 1
USE_TZ = True
STATIC_URL = "/static/"
MEDIA_ROOT = os.path.join(os.path.dirname(__file__), "media")
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["OSCAR_DB"], "USER": "postgres",
    "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 60,
}}
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites", "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig", "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig", "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig", "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig", "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig", "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig", "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig", "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig", "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig", "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig", "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig", "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks", "haystack", "treebeard", "sorl.thumbnail", "django_tables2",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.debug", "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth", "django.template.context_processors.i18n",
        "django.contrib.messages.context_processors.messages",
        "oscar.apps.search.context_processors.search_form",
        "oscar.apps.checkout.context_processors.checkout",
        "oscar.apps.communication.notifications.context_processors.notifications",
        "oscar.core.context_processors.metadata",
    ]},
}]
AUTHENTICATION_BACKENDS = ["oscar.apps.customer.auth_backends.EmailBackend", "django.contrib.auth.backends.ModelBackend"]
# Oscar browses its catalogue through haystack; Whoosh is the pure-Python engine its docs use locally.
HAYSTACK_CONNECTIONS = {"default": {
    "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
    "PATH": os.path.join(os.path.dirname(__file__), "whoosh_index"),
}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
"""

URLS = """
from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
"""

WSGI = """
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_wsgi_application()
"""

# 50 medicines × (3 strengths × 4 pack sizes) = 12 child products each, priced and in stock.
CATALOG = """
from decimal import Decimal
from oscar.apps.catalogue.categories import create_from_breadcrumbs
from oscar.core.loading import get_model
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
if not Product.objects.exists():
    medicine = ProductClass.objects.create(name="Medicine", track_stock=True)
    partner = Partner.objects.create(name="Pharmacy")
    category = create_from_breadcrumbs("Medicines > Muscle and joint")
    for n in range(50):
        parent = Product.objects.create(structure="parent", title=f"Medicine {n:02d}", product_class=medicine,
                                        description="A pharmacy-like product with 12 packs.")
        ProductCategory.objects.create(product=parent, category=category)
        for strength in (10, 20, 40):
            for pills in (30, 60, 90, 120):
                child = Product.objects.create(structure="child", parent=parent, title=f"{strength}mg x {pills}")
                StockRecord.objects.create(product=child, partner=partner, partner_sku=f"M{n}-{strength}-{pills}",
                                           price=Decimal(pills) * Decimal("0.45"), num_in_stock=100)
print("parent products:", Product.objects.filter(structure="parent").count(),
      "children:", Product.objects.filter(structure="child").count())
print("PRODUCT_URL", Product.objects.filter(structure="parent").order_by("title").first().get_absolute_url())
"""

# Oscar's signed-in customer: a basket of 3 products and a country to ship to (the checkout's
# shipping-address form, its first page, needs one).
OSCAR_CUSTOMER = """
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from oscar.core.loading import get_class, get_model
Basket = get_model("basket", "Basket")
Country = get_model("address", "Country")
Product = get_model("catalogue", "Product")
Country.objects.get_or_create(iso_3166_1_a2="US", defaults=dict(
    iso_3166_1_a3="USA", iso_3166_1_numeric="840", printable_name="United States",
    name="United States of America", is_shipping_country=True))
User = get_user_model()
user = User.objects.filter(username="bench").first() or User.objects.create_user(
    username="bench", email="bench@example.com", password="correct horse battery staple")
Basket.objects.filter(owner=user).delete()
basket = Basket.objects.create(owner=user)
basket.strategy = get_class("partner.strategy", "Selector")().strategy(user=user)
for product in Product.objects.filter(structure="child").order_by("id")[:3]:
    basket.add_product(product, 1)
client = Client()
client.force_login(user)
print("OSCAR_SESSION", client.cookies[settings.SESSION_COOKIE_NAME].value, basket.num_lines)
"""

# This shop's signed-in customer (bench.py's) with one pack of each of 3 products in the cart.
SHOP_CUSTOMER = """
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from cart.models import CartLine
from catalog.models import LegalClass, PackageTier
User = get_user_model()
user = User.objects.filter(email="{email}").first() or User.objects.create_user(
    email="{email}", password="{password}", first_name="Bench", last_name="Customer")
CartLine.objects.filter(cart__user=user).delete()
client = Client()
client.force_login(user)
tiers = (
    PackageTier.objects.filter(is_active=True, dosage__product__is_published=True,
        dosage__product__legal_class__in=[LegalClass.GENERAL_SALE, LegalClass.PHARMACY])
    .exclude(stock__lt=5).order_by("dosage__product__slug", "id")
    .distinct("dosage__product__slug")[:3]
)
for tier in tiers:
    assert client.post(reverse("cart:add"), {{"tier_id": tier.pk, "packages": 1}}).status_code == 302
print("SHOP_SESSION", client.cookies[settings.SESSION_COOKIE_NAME].value, len(tiers))
"""


def run(cmd: list[str], **kwargs) -> str:
    result = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=1800, **kwargs
    )
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])} … failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def build_oscar(root: Path, database: str) -> tuple[Path, dict[str, str]]:
    venv = root / "venv"
    bench.log(f"Oscar: virtualenv in {venv}")
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", *OSCAR_REQUIREMENTS])
    version = run(
        [str(venv / "bin" / "python"), "-c", "import oscar; print(oscar.get_version())"]
    ).strip()
    bench.log(f"Oscar {version} installed")
    project = root / "project"
    (project / "shop").mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (project / "shop" / "urls.py").write_text(textwrap.dedent(URLS))
    (project / "shop" / "wsgi.py").write_text(textwrap.dedent(WSGI))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(DJANGO_SETTINGS_MODULE="shop.settings", OSCAR_DB=database, PYTHONPATH=str(project))
    bench.ensure_database(f"postgres://postgres@127.0.0.1:5432/{database}")
    django_admin = str(venv / "bin" / "django-admin")
    run([django_admin, "migrate", "--noinput", "-v0"], cwd=project, env=env)
    out = run([django_admin, "shell", "-c", CATALOG], cwd=project, env=env)
    bench.log(out.strip())
    run([django_admin, "update_index", "-v0"], cwd=project, env=env)
    product_url = out.split("PRODUCT_URL ")[1].split()[0]
    return venv, env | {"_project": str(project), "OSCAR_VERSION": version, "_product": product_url}


def start(cmd: list[str], *, cwd, env, port: int, log_name: str) -> subprocess.Popen:
    with open(
        bench.VAR / log_name, "w"
    ) as log_file:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {bench.VAR / log_name}")
        try:
            requests.get(f"http://{bench.HOST}:{port}/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    bench.stop(proc)
    raise SystemExit("server did not answer within 60 s")


def gunicorn_args(port: int, workers: int) -> list[str]:
    """The same for both shops (command-line options override this shop's gunicorn.conf.py; with
    threads above 1 gunicorn would turn "sync" into gthread)."""
    return [
        "--bind",
        f"{bench.HOST}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--threads",
        "1",
        "--timeout",
        "30",
        "--max-requests",
        "0",
        "--log-level",
        "warning",
    ]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of a gunicorn master and its workers so far (``/proc``, Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def shop_env(env: dict[str, str], setting: str) -> dict[str, str]:
    """This shop's production settings ``env``; "local" without Redis (local-memory cache,
    sessions in the database, as the demo runs), "redis" with Redis for cache and sessions.
    Same ``SECRET_KEY`` for both, so the customer's session is valid in each."""
    return env | {"REDIS_URL": ""} if setting == "local" else env


def median_range(values: list[float | None], fmt: str = ",.0f") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    bench.add_store_args(parser)
    parser.add_argument("--oscar-database", default="oscar_bench")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--connections", type=int, default=0, help="default 2 x workers")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds per page and shop")
    parser.add_argument(
        "--pages",
        default="product,listing,search,home,cart,checkout",
        help="comma-separated, of: product, listing, search, home, cart, checkout",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    connections = args.connections or 2 * args.workers
    bench.VAR.mkdir(parents=True, exist_ok=True)

    root = Path(tempfile.mkdtemp(prefix="oscar-bench-"))
    servers: dict[str, subprocess.Popen] = {}
    try:
        venv, oscar_env = build_oscar(root, args.oscar_database)
        project = oscar_env.pop("_project")
        oscar_version = oscar_env.pop("OSCAR_VERSION")
        product_path = oscar_env.pop("_product")
        out = run(
            [str(venv / "bin" / "django-admin"), "shell", "-c", OSCAR_CUSTOMER],
            cwd=project,
            env=oscar_env,
        )
        oscar_session = out.split("OSCAR_SESSION ")[1].split()[0]

        # This shop, as bench/bench.py prepares it (demo catalog, production settings, static files).
        env = bench.server_env(args)
        bench.ensure_database(args.database_url)
        bench.flush_redis(args.redis_url)
        bench.manage(env, "migrate", "--noinput")
        bench.manage(env, "generate_catalog", "--delete")
        bench.manage(env, "loaddata", "demo_catalog")
        bench.manage(env, "collectstatic", "--noinput")
        out = bench.manage(
            env,
            "shell",
            "-c",
            SHOP_CUSTOMER.format(email=bench.BENCH_EMAIL, password=bench.BENCH_PASSWORD),
        )
        shop_session, lines = out.split("SHOP_SESSION ")[1].split()[:2]
        bench.log(f"this shop's customer has {lines} cart lines")

        ports = {name: mixed_free_port() for name in ("local", "redis", "oscar")}
        for setting in ("local", "redis"):
            servers[setting] = start(
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "pharmacy.wsgi:application",
                    *gunicorn_args(ports[setting], args.workers),
                ],
                cwd=bench.APP_DIR,
                env=shop_env(env, setting),
                port=ports[setting],
                log_name=f"gunicorn-side-by-side-{setting}.log",
            )
        servers["oscar"] = start(
            [
                str(venv / "bin" / "gunicorn"),
                "shop.wsgi:application",
                *gunicorn_args(ports["oscar"], args.workers),
            ],
            cwd=project,
            env=oscar_env,
            port=ports["oscar"],
            log_name="gunicorn-oscar.log",
        )
        base = {name: f"http://{bench.HOST}:{port}" for name, port in ports.items()}
        ours = {"sessionid": shop_session}
        theirs = {"sessionid": oscar_session}
        # page: (this shop's page, its cookies; Oscar's page, its cookies) — None: Oscar has none.
        catalogue = {
            "ceiling": (bench.Page("ceiling", "/bench/ceiling/"), {}, None, {}),
            "product": (
                bench.Page("product", "/products/baclofen/"),
                {},
                bench.Page("product", product_path),
                {},
            ),
            "listing": (
                bench.Page("listing", "/products/"),
                {},
                bench.Page("listing", "/catalogue/"),
                {},
            ),
            "search": (
                bench.Page("search", "/products/?q=pain"),
                {},
                bench.Page("search", "/search/?q=medicine"),
                {},
            ),
            "home": (bench.Page("home", "/"), {}, None, {}),
            "cart": (bench.Page("cart", "/cart/"), ours, bench.Page("cart", "/basket/"), theirs),
            "checkout": (
                bench.Page("checkout", "/checkout/"),
                ours,
                bench.Page("checkout", "/checkout/shipping-address/"),
                theirs,
            ),
        }
        wanted = ["ceiling"] + [p.strip() for p in args.pages.split(",") if p.strip()]
        results = {name: {"local": [], "redis": [], "oscar": []} for name in wanted}
        who_order = ["local", "redis", "oscar"]
        for round_number in range(args.rounds):
            order = who_order[round_number % 3 :] + who_order[: round_number % 3]
            for name in wanted:
                our_page, our_cookies, oscar_page, oscar_cookies = catalogue[name]
                for who in order:
                    page, cookies = (
                        (oscar_page, oscar_cookies) if who == "oscar" else (our_page, our_cookies)
                    )
                    if page is None:
                        continue
                    status = requests.get(
                        base[who] + page.path, cookies=cookies, allow_redirects=False, timeout=30
                    ).status_code
                    if status != 200:
                        raise SystemExit(f"{who} {page.path} answered {status}")
                    # wrk's timeout well above Oscar's slowest answers, so its req/s is a firm figure.
                    kwargs = {
                        "connections": connections,
                        "cookie": bench.cookie_header(cookies),
                        "csrf": "",
                        "timeout_s": 30,
                    }
                    if args.warmup:
                        bench.run_wrk(base[who], page, seconds=args.warmup, **kwargs)
                    cpu_before = server_cpu_seconds(servers[who].pid)
                    result = bench.run_wrk(base[who], page, seconds=args.duration, **kwargs)
                    cpu = server_cpu_seconds(servers[who].pid) - cpu_before
                    result["cpu_ms"] = (
                        cpu / result["requests"] * 1000 if result["requests"] else None
                    )
                    results[name][who].append(result)
                    bench.log(
                        f"round {round_number + 1} {name} {who} {page.path}: {result['rps']:.0f} req/s, "
                        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                        f"server CPU {result['cpu_ms']:.2f} ms/request"
                    )
    finally:
        for proc in servers.values():
            bench.stop(proc)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
        else:
            bench.log(f"kept {root}")

    (bench.VAR / "oscar.json").write_text(json.dumps(results, indent=2))
    report(results, wanted, args, oscar_version, connections)


def report(results: dict, wanted: list[str], args, oscar_version: str, connections: int) -> None:
    """Print the side-by-side table (medians and ranges of the rounds)."""
    print(
        f"\nThis shop (local-memory cache / Redis) vs django-oscar {oscar_version}: {args.workers} sync "
        f"gunicorn workers each, wrk -t1 -c{connections}, {args.duration} s x {args.rounds} rounds "
        f"alternated; load at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
        f"{os.cpu_count()} CPUs; median (range) of the rounds\n"
    )
    print(
        "| page | shop req/s, local cache | shop req/s, Redis | Oscar req/s | ratio (Redis) "
        "| share of ceiling (local / Redis) | share by CPU (local / Redis) "
        "| server CPU ms per request (local / Redis / Oscar) "
        "| p99 ms (local / Redis / Oscar) | errors |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def values(name, who, key):
        return [r[key] for r in results[name][who]]

    for name in wanted:
        by = results[name]
        shares = []
        for setting in ("local", "redis"):
            ratios = [r["rps"] / c["rps"] for r, c in zip(by[setting], results["ceiling"][setting])]
            shares.append(median_range(ratios, ".2f") if name != "ceiling" else "1")
        oscar_rps = values(name, "oscar", "rps")
        ratio = (
            f"{statistics.median(values(name, 'redis', 'rps')) / statistics.median(oscar_rps):.1f}×"
            if oscar_rps and statistics.median(oscar_rps)
            else "—"
        )
        failed = sum(
            r["errors_status"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
            for who in by
            for r in by[who]
        )
        # The same share by CPU: the ceiling's server CPU per request over the page's, steadier than
        # req/s on a shared machine (other programs' load takes wall time, not this CPU time).
        cpu_shares = " / ".join(
            median_range(
                [
                    c["cpu_ms"] / r["cpu_ms"]
                    for r, c in zip(by[s], results["ceiling"][s])
                    if r["cpu_ms"] and c["cpu_ms"]
                ],
                ".2f",
            )
            for s in ("local", "redis")
        )
        cpu = " / ".join(
            median_range(values(name, w, "cpu_ms"), ".2f") for w in ("local", "redis", "oscar")
        )
        p99 = " / ".join(
            median_range(values(name, w, "p99_ms"), ".0f") for w in ("local", "redis", "oscar")
        )
        print(
            f"| {name} | {median_range(values(name, 'local', 'rps'))} | "
            f"{median_range(values(name, 'redis', 'rps'))} | {median_range(oscar_rps, ',.1f')} | "
            f"{ratio} | {' / '.join(shares)} | {cpu_shares} | {cpu} | {p99} | {failed} |"
        )
    print(
        "\n(wrk gives up on a request after 30 s: an Oscar page slower than that under this load "
        "counts as a timeout. Oscar's checkout is its first page, the shipping address form; its "
        "search is haystack with Whoosh; it has no home page of its own.)"
    )


def mixed_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((bench.HOST, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
