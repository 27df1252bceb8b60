"""Run localstripe (the offline Stripe) for the demo and the tests: ``python -m orders.localstripe_dev --port N --from-scratch``.

Real Stripe.js talks to Stripe's servers from the customer's browser. Our localstripe adapter
(``static/js/localstripe-adapter.js``) does the same against localstripe, which needs an
``Authorization`` header on a cross-origin request; localstripe itself neither answers the CORS
preflight nor allows that header. This launcher adds both and changes nothing else. It is a
development tool: production never runs it.
"""
from __future__ import annotations

from aiohttp import web
from localstripe import server


@web.middleware
async def _answer_preflight(request, handler):
    if request.method == "OPTIONS":
        return web.Response(status=204)
    return await handler(request)


async def _allow_authorization_header(request, response):
    if request.headers.get("Origin"):
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"


def main() -> None:
    server.app.middlewares.insert(0, _answer_preflight)
    server.app.on_response_prepare.append(_allow_authorization_header)
    server.start()


if __name__ == "__main__":
    main()
