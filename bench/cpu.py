#!/usr/bin/env python
"""CPU time per request, measured in-process: less noisy than req/s on a shared machine.

Same settings as ``bench/bench.py`` (``PRODUCTION=1``, ``DEBUG=0``, PostgreSQL, Redis cache and
sessions), but no server: Django's test client sends each request through the whole middleware
stack and ``time.process_time()`` counts only this process's CPU, so other programs on the machine
barely move the figure. For each page: a warm-up, then ``--rounds`` rounds of ``--requests``
requests; the *minimum* round is reported (the one least disturbed).

    .venv/bin/python bench/cpu.py --database-url postgres://postgres@127.0.0.1:5432/pharmacy_bench_cpu
    .venv/bin/python bench/cpu.py --pages checkout --profile 30    # plus a cProfile of the page

It migrates the database (created if missing) and loads ``demo_catalog`` when it holds no product.
The customer is the one ``bench.py`` uses, signed in, with ``--lines`` lines in the cart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # the benchmark's settings and helpers

PAGES = {
    "cart": "cart:detail",
    "checkout": "checkout:checkout",  # "orders:checkout" before the checkout app (see _path)
    "home": "catalog:home",
    "ceiling": "bench_ceiling",
    "listing": "catalog:product_list",
    "search": "catalog:product_list",
    "product": "catalog:product_detail",
}


def _path(name: str) -> str:
    """The page's path in the measured checkout, which may predate the checkout app."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name)
    except NoReverseMatch:
        if name != "checkout:checkout":
            raise
        return reverse("orders:checkout")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    bench.add_store_args(parser)
    bench.add_checkout_arg(parser)
    parser.add_argument(
        "--pages", default="cart,checkout", help=f"comma-separated, of: {', '.join(PAGES)}"
    )
    parser.add_argument("--lines", type=int, default=1, help="lines in the customer's cart")
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--anonymous",
        action="store_true",
        help="as a new visitor: no session, no cookies kept between requests (like wrk)",
    )
    parser.add_argument(
        "--gzip", action="store_true", help="send Accept-Encoding: gzip, as browsers do"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile each page (cProfile) and print its N costliest functions",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    bench.use_checkout(args.checkout)
    env = bench.server_env(args)
    bench.ensure_database(args.database_url)
    bench.flush_redis(args.redis_url)
    bench.manage(env, "migrate", "--noinput")
    bench.manage(env, "collectstatic", "--noinput")
    bench.setup_django(env)

    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from cart.models import CartLine
    from catalog.models import LegalClass, PackageTier, Product

    if not Product.objects.exists():
        call_command("loaddata", "demo_catalog", verbosity=0)
    bench.customer_session_cookie()  # creates the customer if needed
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(email=bench.BENCH_EMAIL)
    CartLine.objects.filter(cart__user=user).delete()
    client = Client()
    client.force_login(user)
    tiers = (
        PackageTier.objects.filter(
            is_active=True,
            dosage__product__is_published=True,
            dosage__product__legal_class__in=[LegalClass.GENERAL_SALE, LegalClass.PHARMACY],
        )
        .exclude(stock__lt=5)
        .order_by("dosage__product__slug", "id")
        .distinct("dosage__product__slug")[: args.lines]
    )
    for tier in tiers:
        response = client.post(reverse("cart:add"), {"tier_id": tier.pk, "packages": 1})
        assert response.status_code == 302, response.status_code

    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
        f"{len(tiers)} cart line(s); min of {args.rounds} rounds x {args.requests} requests"
    )
    if args.anonymous:
        client = Client()
    baclofen = (
        Product.objects.filter(slug="baclofen").first()
        or Product.objects.filter(is_published=True).first()
    )

    def get(path):
        if args.anonymous:
            client.cookies.clear()  # wrk sends no cookie: every request is a first visit
        return client.get(
            path, **({"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"} if args.gzip else {})
        )

    for name in args.pages.split(","):
        if name == "product":
            path = baclofen.get_absolute_url()
        else:
            path = _path(PAGES[name]) + ("?q=pain" if name == "search" else "")
        for _ in range(20):
            response = get(path)
        assert response.status_code == 200, (path, response.status_code)
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.requests):
                get(path)
            rounds.append((time.process_time() - started) / args.requests * 1000)
        print(
            f"{name:10} {path:12} CPU per request: min {min(rounds):.2f} ms "
            f"(rounds: {', '.join(f'{r:.2f}' for r in rounds)}); {len(response.content):,} bytes"
        )
        if args.profile:
            bench.profile_requests(lambda path=path: get(path), args.requests, args.profile)


if __name__ == "__main__":
    main()
