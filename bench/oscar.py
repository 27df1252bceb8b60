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
3. prepares this shop as ``bench/bench.py`` does (demo catalog, production settings, Redis);
4. runs both with the same gunicorn settings (``--workers``, sync workers, no worker recycling,
   no access log) and measures, rounds alternated, the product page and the listing of each with
   ``wrk`` at the same concurrency, then prints both and the ratios.

Not part of the test suite. Only 127.0.0.1 is contacted, apart from pip.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pharmacy_bench"
        ),
    )
    parser.add_argument("--oscar-database", default="oscar_bench")
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    )
    parser.add_argument("--port", type=int, default=8107)
    parser.add_argument("--oscar-port", type=int, default=8108)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--connections", type=int, default=0, help="default 2 x workers")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds per page and shop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    connections = args.connections or 2 * args.workers
    bench.VAR.mkdir(parents=True, exist_ok=True)

    root = Path(tempfile.mkdtemp(prefix="oscar-bench-"))
    venv, oscar_env = build_oscar(root, args.oscar_database)
    project = oscar_env.pop("_project")
    oscar_version = oscar_env.pop("OSCAR_VERSION")
    product_path = oscar_env.pop("_product")

    # This shop, as bench/bench.py prepares it (demo catalog, production settings).
    ns = argparse.Namespace(**{**vars(args), "port": args.port})
    env = bench.server_env(ns)
    bench.ensure_database(args.database_url)
    bench.flush_redis(args.redis_url)
    bench.manage(env, "migrate", "--noinput")
    bench.manage(env, "generate_catalog", "--delete")
    bench.manage(env, "loaddata", "demo_catalog")

    ours = start(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "pharmacy.wsgi:application",
            *gunicorn_args(args.port, args.workers),
        ],
        cwd=bench.BASE_DIR,
        env=env,
        port=args.port,
        log_name="gunicorn-side-by-side.log",
    )
    oscar = start(
        [
            str(venv / "bin" / "gunicorn"),
            "shop.wsgi:application",
            *gunicorn_args(args.oscar_port, args.workers),
        ],
        cwd=project,
        env=oscar_env,
        port=args.oscar_port,
        log_name="gunicorn-oscar.log",
    )
    try:
        oscar_base, our_base = (
            f"http://{bench.HOST}:{args.oscar_port}",
            f"http://{bench.HOST}:{args.port}",
        )
        listing = requests.get(oscar_base + "/catalogue/", timeout=10).text
        if product_path.rstrip("/").rsplit("_", 1)[0] not in listing and "medicine-" not in listing:
            raise SystemExit("Oscar's listing shows no products (search index?)")
        pages = {
            "product": (
                bench.Page("product", "/products/baclofen/"),
                bench.Page("product", product_path),
            ),
            "listing": (bench.Page("listing", "/products/"), bench.Page("listing", "/catalogue/")),
        }
        results: dict[str, dict[str, list[dict]]] = {
            name: {"ours": [], "oscar": []} for name in pages
        }
        for round_number in range(args.rounds):
            for name, (our_page, oscar_page) in pages.items():
                for who, base, page in (
                    ("ours", our_base, our_page),
                    ("oscar", oscar_base, oscar_page),
                ):
                    status = requests.get(base + page.path, timeout=10).status_code
                    if status != 200:
                        raise SystemExit(f"{who} {page.path} answered {status}")
                    # wrk's timeout well above Oscar's slowest answers, so its req/s is a firm figure.
                    kwargs = {"connections": connections, "cookie": "", "csrf": "", "timeout_s": 30}
                    if args.warmup:
                        bench.run_wrk(base, page, seconds=args.warmup, **kwargs)
                    result = bench.run_wrk(base, page, seconds=args.duration, **kwargs)
                    results[name][who].append(result)
                    bench.log(
                        f"round {round_number + 1} {name} {who} {page.path}: {result['rps']:.0f} req/s, "
                        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
                    )
    finally:
        bench.stop(ours)
        bench.stop(oscar)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
        else:
            bench.log(f"kept {root}")

    print(
        f"\nThis shop vs django-oscar {oscar_version}: {args.workers} sync gunicorn workers each, wrk -c{connections}, "
        f"{args.duration} s x {args.rounds} alternated rounds, load at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n"
    )
    print(
        "| page | this shop req/s | Oscar req/s | ratio | this shop p50 / p99 ms | Oscar p50 / p99 ms | Oscar errors+timeouts |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, by in results.items():

        def mean(who, key, by=by):
            return sum(r[key] for r in by[who]) / len(by[who])

        failed = sum(
            r["errors_status"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
            for r in by["oscar"]
        )
        ratio = (
            f"{mean('ours', 'rps') / mean('oscar', 'rps'):.1f}x" if mean("oscar", "rps") else "n/a"
        )
        print(
            f"| {name} | {mean('ours', 'rps'):.0f} | {mean('oscar', 'rps'):.1f} | {ratio} | {mean('ours', 'p50_ms'):.1f} / "
            f"{mean('ours', 'p99_ms'):.1f} | {mean('oscar', 'p50_ms'):.1f} / {mean('oscar', 'p99_ms'):.1f} | {failed} |"
        )
    print(
        "\n(wrk gives up on a request after 30 s: an Oscar page slower than that under this load counts as a timeout.)"
    )


if __name__ == "__main__":
    main()
