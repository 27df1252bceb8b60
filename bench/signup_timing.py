#!/usr/bin/env python
"""Sign-up answer time for an address that has an account against a new one (issue 22).

If the two differ, the time alone tells a stranger whether someone is a customer of the
pharmacy. The rule (docs/security.md, "Sign-up timing"): both paths do the same work, the
password hashed and one email queued (``accounts.auth_forms.SignupForm``).

Production settings (``PRODUCTION=1``: the real password hasher, PostgreSQL, the Redis cache,
Celery eager as in ``bench/bench.py``), no server: Django's test client posts the sign-up form
through the whole middleware stack. Each try uses a fresh client, a client address of its own
(the sign-up and email limits are per address) and an address not tried before (allauth sends
one "account already exists" email per address every 3 minutes); the two kinds alternate so
that the machine's load falls on both alike. Prints the median of each and their ratio.

    .venv/bin/python bench/signup_timing.py --database-url postgres://postgres@127.0.0.1:5432/pharmacy_bench_signup
    .venv/bin/python bench/signup_timing.py --runs allauth    # allauth's own form (before the fix)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # the benchmark's settings and helpers

PASSWORD = "Plum-orchard-1987-lantern"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    bench.add_store_args(parser)
    parser.add_argument("--tries", type=int, default=30, help="sign-ups of each kind")
    parser.add_argument(
        "--runs",
        default="shop",
        help="comma-separated, of: shop (the shop's form), allauth (allauth's own form, which "
        "skips the hash for a taken address: before issue 22), rest (the shop's form with a fast "
        "hasher: the work besides the hash)",
    )
    return parser.parse_args()


def sign_up(email: str, address: str) -> float:
    from django.test import Client
    from django.urls import reverse

    client = Client(REMOTE_ADDR=address)
    started = time.perf_counter()
    response = client.post(
        reverse("accounts:signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, (email, response.status_code)
    return elapsed


def measure(tries: int, run: str) -> tuple[float, float]:
    """Median seconds for (taken address, new address)."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    users = get_user_model().objects
    hashed = make_password(PASSWORD)  # once: the accounts that exist need not each cost a hash here
    taken_times, new_times = [], []
    for n in range(tries + 1):  # the first pair warms up, not counted
        taken = users.create(email=f"signup-bench-taken-{run}-{n}@example.com", password=hashed)
        EmailAddress.objects.create(user=taken, email=taken.email, verified=True, primary=True)
        pair = [("taken", taken.email.upper()), ("new", f"signup-bench-new-{run}-{n}@example.com")]
        for kind, email in pair if n % 2 else reversed(pair):  # each kind first every other time
            elapsed = sign_up(email, f"10.{n % 250}.{1 if kind == 'taken' else 2}.1")
            if n:
                (taken_times if kind == "taken" else new_times).append(elapsed)
    users.filter(email__startswith="signup-bench-").delete()
    return statistics.median(taken_times), statistics.median(new_times)


def report(label: str, taken: float, new: float) -> None:
    print(
        f"{label:<34} taken address {taken * 1000:7.1f} ms   new address {new * 1000:7.1f} ms   "
        f"ratio {taken / new:.2f}"
    )


def main() -> None:
    args = parse_args()
    env = bench.server_env(args)
    env["CACHE_KEY_PREFIX"] = f"signup-bench-{uuid.uuid4().hex[:8]}"  # its own rate-limit counters
    bench.ensure_database(args.database_url)
    bench.manage(env, "migrate", "--noinput")
    bench.setup_django(env)

    from django.conf import settings
    from django.contrib.auth.hashers import get_hasher
    from django.test import override_settings
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's hooks; settings stay the production ones
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    import os

    print(
        f"{args.tries} sign-ups of each kind; hasher {get_hasher().algorithm} "
        f"({get_hasher().iterations} iterations); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    runs = {
        "shop": ("shop's form (same work)", {}),
        "allauth": ("allauth's form (before issue 22)", {"ACCOUNT_FORMS": {}}),
        "rest": (
            "shop's form, all but the hash",
            {"PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"]},
        ),
    }
    for run in args.runs.split(","):
        label, changed = runs[run]
        with override_settings(**changed):
            report(label, *measure(args.tries, run))


if __name__ == "__main__":
    main()
