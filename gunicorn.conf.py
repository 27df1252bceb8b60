"""gunicorn settings, read from the environment (gunicorn loads this file from the working directory).

Command-line options override these, e.g. bench/bench.py's ``--bind`` and ``--workers``.
"""
import json
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# Recycle workers now and then so a slow leak never becomes an outage; jitter avoids all at once.
max_requests = 2000
max_requests_jitter = 200
# Which proxies may set X-Forwarded-* (the load balancer's addresses; "*" inside a private network).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_access_log = os.environ.get("ACCESS_LOG", "-")
accesslog = _access_log or None
if os.environ.get("LOG_FORMAT", "json" if os.environ.get("PRODUCTION") in ("1", "true", "True") else "plain") == "json":
    # One JSON object per request, with the same request id as the application's log lines.
    access_log_format = json.dumps({
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
    })
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms [%({x-request-id}o)s]'
