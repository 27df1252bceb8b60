"""Run localstripe (the offline Stripe) for the demo and the tests: ``python -m payments.localstripe_dev --port N --from-scratch``.

It listens on 127.0.0.1 only (``--host`` to change): localstripe's own ``start()`` binds every
interface, and anyone on the network could then read the demo's payments and fake its webhooks.

Real Stripe.js talks to Stripe's servers from the customer's browser. Our localstripe adapter
(``static/js/localstripe-adapter.js``) does the same against localstripe, which needs an
``Authorization`` header on a cross-origin request; localstripe itself neither answers the CORS
preflight nor allows that header. This launcher adds both. It also serves localstripe's mock
Stripe.js inside a function scope: the script declares a top-level ``class Element``, which hides
the DOM's ``Element`` from every other script of the page (htmx's ``instanceof Element`` checks
then fail and it ignores the page: the checkout's live totals). Its one global, ``Stripe``, is an
undeclared assignment and stays global. It is a development tool: production never runs it.
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web
from localstripe import server
from localstripe.resources import store


@web.middleware
async def _answer_preflight(request, handler):
    if request.method == "OPTIONS":
        return web.Response(status=204)
    return await handler(request)


async def _allow_authorization_header(request, response):
    if request.headers.get("Origin"):
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"


@web.middleware
async def _scope_mock_stripe_js(request, handler):
    response = await handler(request)
    if request.path == "/js.stripe.com/v3/" and response.status == 200:
        response.text = "(function () {\n" + response.text + "\n})();\n"
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args()
    if not args.from_scratch:
        store.try_load_from_disk()
    server.app.middlewares.insert(0, _scope_mock_stripe_js)
    server.app.middlewares.insert(0, _answer_preflight)
    server.app.on_response_prepare.append(_allow_authorization_header)
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(server.app, host=args.host, port=args.port, access_log=access_log)


if __name__ == "__main__":
    main()
