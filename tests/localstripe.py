"""localstripe (the offline Stripe) for the tests, plus what a browser would do against it.

``localstripe_server`` starts one localstripe per test session on a free port (through
``payments.localstripe_dev``, which lets a browser send the Authorization header);
``localstripe`` points the settings at it for one test. ``browser_confirm`` and
``browser_authenticate`` repeat the HTTP calls Stripe.js (our adapter) makes from the
customer's browser; they live here, never in application code.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import stripe

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_pharmacy_tests"
PUBLISHABLE_KEY = "pk_test_pharmacy_tests"
SECRET_KEY = "sk_test_pharmacy_tests"

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"
CARD_3DS = "4000002500003155"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStripe:
    base: str
    process: subprocess.Popen

    @property
    def js_url(self) -> str:
        return f"{self.base}/js.stripe.com/v3/"

    def register_webhook(
        self, url: str, *, secret: str = WEBHOOK_SECRET, name: str = "tests"
    ) -> None:
        data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
        urllib.request.urlopen(f"{self.base}/_config/webhooks/{name}", data=data, timeout=5).read()

    def payment_intent(self, intent_id: str) -> dict:
        _use(self.base)
        return stripe.PaymentIntent.retrieve(intent_id).to_dict()


def _use(base: str) -> None:
    stripe.api_key = "sk_test_localstripe_browser"
    stripe.api_base = base


@pytest.fixture(scope="session")
def localstripe_server():
    port = free_port()
    log_path = (
        ROOT / "var" / f"localstripe-tests-{port}.log" if (ROOT / "var").is_dir() else os.devnull
    )
    with open(log_path, "w") as log:  # the server keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "payments.localstripe_dev",
                "--port",
                str(port),
                "--from-scratch",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LocalStripe(base=f"http://127.0.0.1:{port}", process=process)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(server.js_url, timeout=1).read()
            break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start")
            time.sleep(0.1)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not subprocess.DEVNULL:
            log.close()


@pytest.fixture
def localstripe(localstripe_server, settings):
    """The shop's Stripe settings pointed at localstripe; webhooks go nowhere unless a test registers them."""
    settings.STRIPE_API_BASE = localstripe_server.base
    settings.STRIPE_JS_URL = localstripe_server.js_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    if policy:  # the browser may load the mock Stripe.js from, and talk to, localstripe
        policy = copy.deepcopy(policy)
        for directive in ("script-src", "connect-src", "frame-src"):
            policy["DIRECTIVES"].setdefault(directive, []).append(localstripe_server.base)
        settings.CONTENT_SECURITY_POLICY = policy
    localstripe_server.register_webhook("http://127.0.0.1:9/nowhere/")
    return localstripe_server


def browser_confirm(*, base: str, intent_id: str, card_number: str) -> dict:
    """What Stripe.js does on "Pay": create a PaymentMethod, attach it, confirm. Returns the
    PaymentIntent, or ``{"error": message}`` when the card is declined."""
    _use(base)
    method = stripe.PaymentMethod.create(
        type="card", card={"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    )
    stripe.PaymentIntent.modify(intent_id, payment_method=method.id)
    try:
        return stripe.PaymentIntent.confirm(intent_id).to_dict()
    except stripe.CardError as exc:
        return {"error": exc.user_message}


def browser_authenticate(
    *, base: str, intent_id: str, client_secret: str, success: bool = True
) -> dict:
    """The customer's answer in the 3-D Secure dialog (localstripe's ``_authenticate``)."""
    request = urllib.request.Request(
        f"{base}/v1/payment_intents/{intent_id}/_authenticate?success={'true' if success else 'false'}",
        data=json.dumps({"key": "pk_test_x", "client_secret": client_secret}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return json.loads(urllib.request.urlopen(request, timeout=5).read())


def sign_webhook(
    payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> str:
    """A Stripe-Signature header, computed as Stripe does."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"
