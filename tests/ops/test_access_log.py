"""gunicorn's access log (gunicorn.conf.py, both formats) never holds a signed order link's token."""

import json

import pytest
import requests

from orders.links import order_link
from tests.live_gunicorn import Gunicorn, server_env
from tests.orders.conftest import general_tier, make_cart, place  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_signed_order_links_reach_the_order_but_not_the_access_log(
    transactional_db, localstripe, general_tier, tmp_path, log_format
):
    order = place(make_cart(tier=general_tier)).order
    link = order_link(order)
    token = link.split("?t=", 1)[1]
    secret_paths = [
        link + "&utm_source=email",  # the token among other parameters
        link.replace("?t=", "?%74="),  # the same parameter, percent-encoded
        "/accounts/password/reset/key/4-c2x8zf-3d8e1b2c9a7f6e5d4c3b2a190817/",
        f"/accounts/claim/{order.number}/confirm/claim-secret-token-value/",
    ]
    referred = "/products/"
    with Gunicorn(env=server_env(LOG_FORMAT=log_format), log=tmp_path / "gunicorn.log") as server:
        page = requests.get(server.base + link, timeout=30)
        assert page.status_code == 200 and str(order.number) in page.text  # the link still works
        for path in secret_paths:
            requests.get(server.base + path, timeout=30)
        requests.get(server.base + referred, headers={"Referer": server.base + link}, timeout=30)
    # The access log's lines (the application's own log lines go to the same output here).
    log = "\n".join(
        line
        for line in (tmp_path / "gunicorn.log").read_text().splitlines()
        if '" HTTP/1.1"' in line or ' HTTP/1.1" ' in line or "gunicorn.access" in line
    )

    assert f"/orders/{order.number}/" in log and "[redacted]" in log
    for secret in (token, "c2x8zf-3d8e1b2c9a7f6e5d4c3b2a190817", "claim-secret-token-value"):
        assert secret not in log
    if log_format == "json":
        lines = [
            json.loads(line)
            for line in log.splitlines()
            if line.startswith("{") and "gunicorn.access" in line
        ]
        order_lines = [line for line in lines if line["path"] == f"/orders/{order.number}/"]
        assert order_lines and all(
            line["query"].startswith(("t=[redacted]", "%74=[redacted]")) for line in order_lines
        )
        assert "utm_source=email" in " ".join(
            line["query"] for line in order_lines
        )  # the rest is kept
    else:
        assert f'"GET /orders/{order.number}/?t=[redacted]&utm_source=email HTTP/1.1" 200' in log
