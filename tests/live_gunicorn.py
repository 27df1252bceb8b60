"""The shop under a real gunicorn (with ``gunicorn.conf.py``) on a free port, for tests and bench scripts.

The server shares the caller's database (a ``transactional_db`` test's, or a bench database) and its
``SECRET_KEY``, so sessions and carts made in-process are the server's too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Self
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
CHECKOUT_FORM = {
    "email": "alex@example.com",
    "name": "Alex Morgan",
    "line1": "1 Main St",
    "city": "Albany",
    "state": "NY",
    "zip_code": "12207",
    "shipping_method": "standard",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env(**overrides: str) -> dict[str, str]:
    """A production-like environment (DEBUG off) without the caller's service settings leaking in."""
    from django.conf import settings

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("STRIPE_", "EMAIL_", "CELERY_", "CACHE_", "SECURE_", "SESSION_", "CSRF_")
        )
        and key
        not in (
            "PRODUCTION",
            "DEBUG",
            "ALLOWED_HOSTS",
            "REDIS_URL",
            "DATABASE_URL",
            "ANYMAIL",
            "BIND",
            "PORT",
            "WEB_CONCURRENCY",
            "WEB_THREADS",
            "FORWARDED_ALLOW_IPS",
            "LOG_FORMAT",
        )
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pharmacy.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=database_url(),
        LOG_FORMAT="plain",
        STRIPE_SECRET_KEY="sk_test_live_gunicorn",
        STRIPE_PUBLISHABLE_KEY="pk_test_live_gunicorn",
        STRIPE_WEBHOOK_SECRET="whsec_live_gunicorn",
    )
    env.update(overrides)
    return env


class Gunicorn:
    """``gunicorn pharmacy.wsgi:application`` in its own process group; its output goes to ``log``."""

    def __init__(
        self, *, env: dict[str, str], log: Path, args: tuple[str, ...] = (), port: int | None = None
    ):
        self.port = port or free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        handle = log.open("w")
        self.process = subprocess.Popen(
            [str(GUNICORN), "pharmacy.wsgi:application", "--bind", f"127.0.0.1:{self.port}", *args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()

    def healthy(self) -> subprocess.CompletedProcess:
        """The deployment's own web health check (deploy/healthcheck.py web), as a container runs it."""
        return subprocess.run(
            [sys.executable, str(HEALTHCHECK), "web"],
            env=self.env,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            if self.healthy().returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"gunicorn failed its health check: {self.healthy().stderr}\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> Self:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentServer:
    """A hung service: accepts TCP connections and never sends a byte (until closed)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never answered

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def customer_with_cart(tier, packages: int = 1) -> requests.Session:
    """A browser whose session holds a cart with ``packages`` of ``tier`` (database sessions)."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    from cart.models import Cart, CartLine

    cart = Cart.objects.create(session_key=uuid.uuid4().hex)
    CartLine.objects.create(cart=cart, tier=tier, packages=packages, price_when_added=tier.price)
    session = SessionStore()
    session["cart_id"] = cart.pk
    session.save()
    cart.session_key = session.session_key
    cart.save()
    browser = requests.Session()
    browser.cookies.set(settings.SESSION_COOKIE_NAME, session.session_key)
    return browser


def checkout_form(browser: requests.Session, base: str) -> dict[str, str]:
    """What the checkout page's form posts back: the figures shown and the CSRF token."""
    html = browser.get(f"{base}/checkout/", timeout=30).text
    figures = re.search(r'name="figures" value="([^"]+)"', html)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert figures and token, "the checkout page carries its figures and a CSRF token"
    return {**CHECKOUT_FORM, "figures": figures.group(1), "csrfmiddlewaretoken": token.group(1)}


def post_checkout(
    browser: requests.Session, base: str, form: dict[str, str], outcome: dict
) -> None:
    """Pay (as the checkout page's script does); the answer and its time go into ``outcome``."""
    started = time.monotonic()
    try:
        response = browser.post(
            f"{base}/checkout/", data=form, headers={"Accept": "application/json"}, timeout=120
        )
        outcome["status"], outcome["body"] = response.status_code, response.text
    except requests.RequestException as exc:
        outcome["error"] = repr(exc)
    finally:
        outcome["seconds"] = time.monotonic() - started
