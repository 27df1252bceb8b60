#!/usr/bin/env python3
"""Health check of one process type, for container HEALTHCHECKs and monitors: ``healthcheck.py web|worker|beat``.

Exit status 0 when healthy, 1 otherwise (with one line on stderr saying why).

- ``web``: ``GET /healthz`` on this host's gunicorn (``PORT``, default 8000), sent with the first
  name of ``ALLOWED_HOSTS`` as its Host: under production settings a request for "127.0.0.1" is
  refused with 400, so a probe that sends the address it connects to reports a healthy shop as
  broken. The standard library only: it runs every few seconds and needs nothing of Django.
- ``worker``: this host's Celery worker (``celery@<hostname>``) answers a ping through the broker.
- ``beat``: this host's Celery beat (``celerybeat@<hostname>``, started with
  ``--enable-remote-control``) answers a ping; beat stops answering when its scheduler has not
  ticked for a while, so a stuck beat fails too.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys

TIMEOUT_SECONDS = 3


def probe_host(allowed_hosts: str) -> str:
    """A name Django accepts: the first of ALLOWED_HOSTS that is not a wildcard (".x.com" is "x.com")."""
    for name in (part.strip() for part in allowed_hosts.split(",")):
        if name and name != "*":
            return name.lstrip(".")
    return "127.0.0.1"


def check_web(environ: os._Environ | dict) -> str | None:
    port = int(environ.get("PORT", "8000"))
    host = probe_host(environ.get("ALLOWED_HOSTS", ""))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        # As the proxy would send it: HTTPS already, so no redirect whatever SECURE_SSL_REDIRECT says.
        conn.request("GET", "/healthz", headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = conn.getresponse().status
    except OSError as exc:
        return f"web: no answer on 127.0.0.1:{port} ({exc})"
    finally:
        conn.close()
    return None if status == 200 else f"web: /healthz answered {status} for Host {host}"


def check_celery(node: str) -> str | None:
    from pharmacy.celery import app

    replies = app.control.ping(destination=[node], timeout=TIMEOUT_SECONDS)
    return None if replies else f"{node} did not answer a ping"


def main(argv: list[str]) -> int:
    kind = argv[1] if len(argv) == 2 else ""
    if kind == "web":
        problem = check_web(os.environ)
    elif kind in ("worker", "beat"):
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
        node = f"{'celery' if kind == 'worker' else 'celerybeat'}@{os.environ.get('CELERY_HOSTNAME') or socket.gethostname()}"
        problem = check_celery(node)
    else:
        print("usage: healthcheck.py web|worker|beat", file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
