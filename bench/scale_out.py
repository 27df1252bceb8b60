#!/usr/bin/env python3
"""Scale-out client: many customers check out at once across two (or more) web servers.

Each customer is a thread with its own cookie jar, and every request it makes goes to the *next*
server in turn, so the product page, the add to cart, the checkout page, the checkout post and
the order page of one customer land on different processes: the session and the cart must live
in the shared Redis/PostgreSQL, not in a process. The card is confirmed against localstripe the
way Stripe.js does it (PaymentMethod, attach, confirm), never through the shop.

The mix (shuffled with a fixed seed, so the kinds compete with each other):

* ``stock``: one pack of a tier whose stock is tracked (more attempts than packs: the excess must
  be refused with a message, never a 5xx; stock is taken when the card is authorised, so a
  customer whose card is authorised after the last pack went gets the order canceled, the hold
  released and a page that says so);
* ``declined``: the card 4000 0000 0000 0341, refused by the bank; the customer stays on the
  checkout page, so only Stripe's webhook tells the shop;
* ``retry``: a tracked pack, the declined card, then the same checkout again with a good card
  (on the other server): the first order must be canceled and its hold released;
* ``rx``: a prescription item, with the prescriber's details instead of an upload;
* ``rx_away``: the same, but the customer closes the tab once the card is authorised: the order
  page is never opened, so the shop learns of the hold from Stripe alone (localstripe sends no
  ``amount_capturable_updated``: the caller delivers it, see tests/scale);
* ``open``: a general-sale tier whose stock is not tracked.

Standard library only (urllib, threads). Run it against servers that already exist::

    python bench/scale_out.py --server http://127.0.0.1:8121 --server http://127.0.0.1:8122 \\
        --stripe http://127.0.0.1:8420 --stock-tier /products/x/#12 --open-tier /products/x/#13 \\
        --rx-tier /products/y/#14 --orders 70 --stock-attempts 40 --retry 4 --declined 6 --rx 10 --concurrency 8

It prints a summary (requests and statuses per server, outcomes) and, with ``--json PATH``,
writes every request and every customer's outcome for a test to check.
"""

from __future__ import annotations

import argparse
import collections
import html
import http.cookiejar
import itertools
import json
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"
TIMEOUT = 30


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Record a redirect as what it is; the customer decides where to go next."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class Hit:
    customer: int
    server: str
    method: str
    step: str
    status: int
    ms: float


@dataclass
class Outcome:
    customer: int
    kind: str
    result: str = ""  # placed | refused | error
    order_number: int | None = None
    intent_id: str = ""
    message: str = ""
    card_status: str = ""  # what localstripe answered: requires_capture | declined
    order_page: int | None = None
    abandoned: list[int] = field(
        default_factory=list
    )  # earlier attempts replaced by a new checkout
    servers: list[str] = field(default_factory=list)


class Customer:
    def __init__(
        self, number: int, servers: list[str], stripe: str, stripe_key: str, hits: list, lock
    ):
        self.number = number
        self._servers = itertools.cycle(
            servers[number % len(servers) :] + servers[: number % len(servers)]
        )
        self.stripe, self.stripe_key = stripe, stripe_key
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self._hits, self._lock = hits, lock
        self.used: list[str] = []

    def csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def request(
        self, step: str, path: str, *, data: dict | None = None, headers: dict | None = None
    ):
        """One request to the next server; returns (status, headers, body text)."""
        server = next(self._servers)
        self.used.append(server)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(
            server + path,
            data=body,
            headers=headers or {},
            method="POST" if body is not None else "GET",
        )
        started = time.perf_counter()
        try:
            with self.opener.open(req, timeout=TIMEOUT) as response:
                status, head, text = response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, head, text = exc.code, exc.headers, exc.read().decode(errors="replace")
        ms = (time.perf_counter() - started) * 1000
        with self._lock:
            self._hits.append(
                Hit(self.number, server, req.get_method(), step, status, round(ms, 1))
            )
        return status, head, text

    def stripe_call(self, path: str, data: dict) -> tuple[int, dict]:
        """What the browser's Stripe.js sends to Stripe (here localstripe)."""
        req = urllib.request.Request(
            self.stripe + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Authorization": f"Bearer {self.stripe_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def _product(spec: str) -> tuple[str, int]:
    path, _, tier = spec.partition("#")
    return path, int(tier)


def checkout_fields(customer: int, *, rx_tier: int | None) -> dict:
    fields = {
        "email": f"scale.customer{customer}@example.com",
        "name": f"Scale Customer {customer}",
        "line1": f"{100 + customer} River Street",
        "line2": "",
        "city": "Albany",
        "state": "NY",
        "zip_code": "12207",
        "shipping_method": "standard",
    }
    if rx_tier is not None:
        prefix = f"rx_{rx_tier}"
        fields.update(
            {
                "patient_name": f"Scale Customer {customer}",
                "date_of_birth": "1980-05-17",
                "allergies": "",
                "current_medicines": "",
                f"{prefix}_method": "prescriber",
                f"{prefix}_prescriber_name": "Dr. Ruth Okafor",
                f"{prefix}_prescriber_phone": "518-555-0101",
                f"{prefix}_prescriber_licence": "1234567890",
            }
        )
    return fields


def shop(customer: Customer, kind: str, product_path: str, tier_id: int) -> Outcome:
    """One customer's visit, as a browser with JavaScript would make it."""
    out = Outcome(customer=customer.number, kind=kind, servers=customer.used)
    status, _, page = customer.request("product", product_path)
    if status != 200:
        out.result, out.message = "error", f"product page answered {status}"
        return out
    if f'name="tier_id" value="{tier_id}"' not in page:
        shown = "Out of stock" if 'class="out-of-stock"' in page else "no add-to-cart button"
        out.result, out.message = "refused", f"{shown} (product page)"
        return out

    # The add-to-cart button (htmx): a fragment; a refusal (the pack sold out since the page
    # was shown) is a 400 with the reason and HX-Trigger: cart-error.
    token = customer.csrf()
    status, head, text = customer.request(
        "cart_add",
        "/cart/add/",
        data={"csrfmiddlewaretoken": token, "tier_id": tier_id, "packages": 1},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    if status == 400 and "cart-error" in (head.get("HX-Trigger") or ""):
        out.result, out.message = "refused", re.sub(r"<[^>]+>|\s+", " ", text).strip()
        return out
    if status != 200:
        out.result, out.message = "error", f"add to cart answered {status}"
        return out

    status, _, text = customer.request("checkout_page", "/checkout/")
    if status != 200:
        out.result, out.message = "error", f"checkout page answered {status}"
        return out
    # checkout.js posts the form with FetchAPI and Accept: application/json; "retry" customers
    # see their card declined, then press "Place order and pay" again with another card.
    cards = {"declined": [CARD_DECLINED], "retry": [CARD_DECLINED, CARD_OK]}.get(kind, [CARD_OK])
    # The figures the page showed go back with "Pay"; a 409 lists what changed (a price, a pack
    # sold out) and carries the new figures, which the customer confirms by pressing again.
    figures = html.unescape(next(iter(re.findall(r'name="figures" value="([^"]*)"', text)), ""))
    for attempt, card in enumerate(cards):
        if attempt:
            out.abandoned.append(out.order_number)
        for _confirm in range(2):
            data = {
                "csrfmiddlewaretoken": customer.csrf(),
                "figures": figures,
                **checkout_fields(
                    customer.number, rx_tier=tier_id if kind.startswith("rx") else None
                ),
            }
            status, _, text = customer.request(
                "checkout_post",
                "/checkout/",
                data=data,
                headers={"Accept": "application/json", "X-CSRFToken": customer.csrf()},
            )
            try:
                answer = json.loads(text)
            except ValueError:
                answer = {}
            if status != 409 or "figures" not in answer:
                break
            figures = answer["figures"]
        if status == 400:
            out.result, out.order_number, out.message = (
                "refused",
                None,
                answer.get("message") or text[:200],
            )
            return out
        if status != 200 or "client_secret" not in answer:
            out.result, out.message = "error", f"checkout answered {status}: {text[:200]}"
            return out
        out.result, out.order_number = "placed", answer["order_number"]
        out.intent_id = answer["client_secret"].split("_secret_")[0]

        # Stripe.js: a PaymentMethod from the card typed in, attached to the intent, confirmed.
        code, method = customer.stripe_call(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": card,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        if code != 200:
            out.result, out.message = "error", f"localstripe refused the payment method: {method}"
            return out
        customer.stripe_call(
            f"/v1/payment_intents/{out.intent_id}", {"payment_method": method["id"]}
        )
        code, intent = customer.stripe_call(f"/v1/payment_intents/{out.intent_id}/confirm", {})
        out.card_status = intent.get("status", "") if code == 200 else "declined"
        if out.card_status == "requires_capture":
            break
        # Stripe.js shows the bank's answer on the checkout page; the browser does not go to the
        # order page, so only Stripe's webhook (or the next attempt) tells the shop.
        out.message = (intent.get("error") or {}).get("message", "")
    else:
        return out
    if kind == "rx_away":
        return out

    # The return URL (the order page, signed link): the shop asks Stripe and moves the order.
    return_path = urllib.parse.urlsplit(answer["return_url"])
    status, _, _ = customer.request("order_page", f"{return_path.path}?{return_path.query}")
    out.order_page = status
    return out


def plan(args) -> list[tuple[str, str, int]]:
    jobs = [("stock", *_product(args.stock_tier))] * args.stock_attempts
    jobs += [("retry", *_product(args.stock_tier))] * args.retry
    jobs += [("declined", *_product(args.open_tier))] * args.declined
    jobs += [("rx", *_product(args.rx_tier))] * args.rx
    jobs += [("rx_away", *_product(args.rx_tier))] * args.rx_away
    rest = args.orders - len(jobs)
    if rest < 0:
        raise SystemExit(
            "--orders must be at least --stock-attempts + --retry + --declined + --rx + --rx-away"
        )
    jobs += [("open", *_product(args.open_tier))] * rest
    random.Random(args.seed).shuffle(jobs)
    return jobs


def run(args) -> dict:
    hits: list[Hit] = []
    lock = threading.Lock()
    jobs = plan(args)

    def one(numbered):
        number, (kind, path, tier) = numbered
        customer = Customer(number, args.server, args.stripe, args.stripe_key, hits, lock)
        try:
            return shop(customer, kind, path, tier)
        except Exception as exc:  # noqa: BLE001 - a timeout or reset is an outcome to report
            return Outcome(
                customer=number,
                kind=kind,
                result="error",
                message=f"{type(exc).__name__}: {exc}",
                servers=customer.used,
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        outcomes = list(pool.map(one, enumerate(jobs)))
    elapsed = time.perf_counter() - started
    return {
        "elapsed_s": round(elapsed, 2),
        "hits": [asdict(h) for h in hits],
        "outcomes": [asdict(o) for o in outcomes],
    }


def summary(result: dict) -> str:
    hits, outcomes = result["hits"], result["outcomes"]
    lines = [f"{len(outcomes)} customers, {len(hits)} requests in {result['elapsed_s']} s"]
    per_server = collections.defaultdict(collections.Counter)
    for hit in hits:
        per_server[hit["server"]][hit["status"]] += 1
    for server, statuses in sorted(per_server.items()):
        lines.append(
            f"  {server}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}"
        )
    placed_on = collections.Counter(
        hit["server"] for hit in hits if hit["step"] == "checkout_post" and hit["status"] == 200
    )
    lines.append(
        f"  checkouts accepted (orders created) per server: {dict(sorted(placed_on.items()))}"
    )
    by_kind = collections.defaultdict(collections.Counter)
    for out in outcomes:
        by_kind[out["kind"]][
            out["result"] + (f"/{out['card_status']}" if out["card_status"] else "")
        ] += 1
    for kind, counts in sorted(by_kind.items()):
        lines.append(f"  {kind}: {dict(sorted(counts.items()))}")
    refusals = collections.Counter(out["message"] for out in outcomes if out["result"] == "refused")
    for message, count in refusals.most_common():
        lines.append(f"  refused ×{count}: {message}")
    errors = [out for out in outcomes if out["result"] == "error"]
    for out in errors[:10]:
        lines.append(f"  ERROR customer {out['customer']} ({out['kind']}): {out['message']}")
    slow = sorted(hit["ms"] for hit in hits)
    if slow:
        lines.append(f"  latency p50 {slow[len(slow) // 2]:.0f} ms, max {slow[-1]:.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        action="append",
        required=True,
        help="a web server's base URL (give two or more)",
    )
    parser.add_argument("--stripe", required=True, help="localstripe's base URL")
    parser.add_argument(
        "--stripe-key", default="sk_test_scale_out", help="key the 'browser' sends to localstripe"
    )
    parser.add_argument(
        "--stock-tier",
        required=True,
        help="PRODUCT_PATH#TIER_ID of a stock-tracked general-sale pack",
    )
    parser.add_argument(
        "--open-tier",
        required=True,
        help="PRODUCT_PATH#TIER_ID of a general-sale pack without stock count",
    )
    parser.add_argument(
        "--rx-tier", required=True, help="PRODUCT_PATH#TIER_ID of a prescription pack"
    )
    parser.add_argument("--orders", type=int, default=70, help="checkout attempts in all")
    parser.add_argument("--stock-attempts", type=int, default=40)
    parser.add_argument(
        "--retry",
        type=int,
        default=4,
        help="customers paying for a tracked pack again after a declined card",
    )
    parser.add_argument("--declined", type=int, default=6)
    parser.add_argument("--rx", type=int, default=10)
    parser.add_argument(
        "--rx-away",
        type=int,
        default=0,
        help="prescription customers who never open the order page",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--json", help="write every request and outcome here")
    args = parser.parse_args(argv)
    args.server = [s.rstrip("/") for s in args.server]
    result = run(args)
    print(summary(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle)
    bad = [h for h in result["hits"] if h["status"] >= 500] or [
        o for o in result["outcomes"] if o["result"] == "error"
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
