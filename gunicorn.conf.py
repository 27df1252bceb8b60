"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Command-line options override these, e.g. bench/bench.py's ``--bind`` and ``--workers``.
"""

import json
import os

# Loopback by default: only the proxy on the same host reaches gunicorn. In a container, where the
# proxy is another container, set BIND=0.0.0.0:8000 and publish the port to the proxy only.
bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threads: a request waiting on Stripe (up to STRIPE_TIMEOUT_SECONDS x (1 + retries), ~9 s by
# default) holds one thread, not a whole worker, so catalog pages keep answering. With sync
# workers, two checkouts stuck on a hung Stripe held the home page up for seconds (figures with
# and without threads: docs/security.md, "Stripe: timeouts and retries"; bench/stripe_hang.py).
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# A worker whose threads are all busy stops accepting, so the next request goes to a worker with a
# free thread instead of queueing behind the stuck ones (gthread accepts up to 1000 by default).
worker_connections = threads
# No keep-alive: the proxy opens a connection per request (nginx's default towards an upstream),
# and an idle kept-alive connection would count against worker_connections.
keepalive = 0
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# No worker recycling by default. Recycling every 2,000 requests meant, at a thousand requests a
# second, a worker restarting every second or two (each restart re-imports Django and drops warm
# connections), which showed in the slowest requests (docs/performance.md). No leak is known; if
# one appears, set MAX_REQUESTS (e.g. 200000) and the jitter (10% by default) spreads the restarts
# out.
max_requests = int(os.environ.get("MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("MAX_REQUESTS_JITTER", str(max_requests // 10)))
# Load the application once in the master and fork: workers start in milliseconds and share
# the imported code's memory. Nothing opens a database or Redis connection at import time
# (connections are per worker, opened on first use). Set PRELOAD_APP=0 to load in each worker.
preload_app = os.environ.get("PRELOAD_APP", "1") not in ("0", "false", "False")
# Which proxies may set X-Forwarded-Proto/-For: the proxy's own address(es), never "*" (anyone
# reaching the port could then claim HTTPS and any client address).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn would also take SCRIPT_NAME and PATH_INFO from a trusted proxy's request headers; the shop
# is served at the root, so no header may move it (a SCRIPT_NAME header once walked past the
# staff second-factor check).
forwarder_headers = ""
# The access log never holds a signed order link's token (pharmacy/logging.py).
logger_class = "pharmacy.logging.RedactingGunicornLogger"

_access_log = os.environ.get("ACCESS_LOG", "-")
accesslog = _access_log or None
if (
    os.environ.get(
        "LOG_FORMAT", "json" if os.environ.get("PRODUCTION") in ("1", "true", "True") else "plain"
    )
    == "json"
):
    # One JSON object per request, with the same request id as the application's log lines.
    access_log_format = json.dumps(
        {
            "logger": "gunicorn.access",
            "remote": "%(h)s",
            "method": "%(m)s",
            "path": "%(U)s",
            "query": "%(q)s",
            "status": "%(s)s",
            "bytes": "%(B)s",
            "duration_ms": "%(M)s",
            "user_agent": "%(a)s",
            "request_id": "%({x-request-id}o)s",
        }
    )
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms [%({x-request-id}o)s]'


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR set (several workers, docs/operations.md), /metrics sums every
    worker's request metrics from files in that folder; a worker that exits is forgotten here."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
