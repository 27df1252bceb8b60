#!/usr/bin/env python
"""What one order costs the shop, request by request (issue #26).

    .venv/bin/python bench/order_cpu.py --redis-url redis://127.0.0.1:6391 \\
        --database-prefix postgres://postgres@127.0.0.1:5432/pharmacy_mixed --orders 20 [--profile 30]

``bench/mixed.py``'s deployment (its own database ``--database-prefix`` + ``_order_cpu``, Redis
database, localstripe with a webhook to the shop, gunicorn with ``PRODUCTION=1``), but gunicorn
runs **one sync worker** whose hooks time each request with ``time.process_time()`` (the
checkout's ``gunicorn.conf.py`` with ``worker_class = "sync"`` and those hooks added). Orders are
placed one after another by ``bench/scale_out.py``'s customer, nothing else runs: after
``--warmup`` orders (imports, templates), ``--orders`` are measured. It prints the worker's CPU
per request, by method and path (digits as N), and the CPU of each process group
(``bench/mixed.py``'s accounting) per order. ``--profile N`` runs the worker under cProfile and
prints its N most expensive functions by cumulative time, warm-up orders included (cProfile slows the worker: take the
CPU figures from a run without it).
"""

from __future__ import annotations

import argparse
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mixed  # the deployment and the CPU accounting
import scale_out  # the customer who places an order through localstripe

import bench

# gunicorn settings: the checkout's own, one sync worker (a request's CPU is the process's CPU
# around it), and hooks that record each request's CPU and, with ORDER_CPU_PROFILE=1, a cProfile.
CONFIG = """
import cProfile, json, os, re, time

exec(open("gunicorn.conf.py").read())  # the checkout's settings (gunicorn runs in the checkout)

worker_class, workers, threads = "sync", 1, 1  # with threads > 1 gunicorn runs gthread
_out, _profile, _requests = os.environ["ORDER_CPU_OUT"], None, []


def post_fork(server, worker):
    global _profile
    if os.environ.get("ORDER_CPU_PROFILE") == "1":
        _profile = cProfile.Profile()
        _profile.enable()


def pre_request(worker, req):
    worker.cpu_started = time.process_time()


def post_request(worker, req, environ, resp):
    cpu_ms = (time.process_time() - worker.cpu_started) * 1000
    _requests.append([time.time(), req.method, re.sub(r"[0-9]+", "N", req.path), cpu_ms])


def worker_exit(server, worker):
    if _profile:
        _profile.disable()
        _profile.dump_stats(_out + ".prof")
    with open(_out, "w") as out:
        json.dump(_requests, out)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument(
        "--database-prefix", default="postgres://postgres@127.0.0.1:5432/pharmacy_bench_mixed"
    )
    parser.add_argument("--orders", type=int, default=20, help="orders measured")
    parser.add_argument("--warmup", type=int, default=3, help="orders placed first, not measured")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile, top N")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-order-cpu-"))
    out = tmp / "requests.json"
    (tmp / "gunicorn.conf.py").write_text(CONFIG)
    settings = argparse.Namespace(
        no_page_cache=False,
        urls=30,
        workers=1,
        pin=False,
        eager=False,  # emails and receipt PDFs in the Celery worker, as deployed
        worker_nice=19,
        gunicorn_config=tmp / "gunicorn.conf.py",
    )
    dep = mixed.Deployment(
        label="order_cpu",
        checkout=bench.BASE_DIR,
        database_url=f"{args.database_prefix}_order_cpu",
        # Redis database 10 (bench/mixed.py's checkouts use 11 and up), flushed
        redis_url=urllib.parse.urlunsplit(
            urllib.parse.urlsplit(args.redis_url)._replace(path="/10")
        ),
    )
    hits: list[scale_out.Hit] = []
    lock = threading.Lock()

    def order(number: int) -> scale_out.Outcome:
        path, tier = dep.orders[number % len(dep.orders)]
        customer = scale_out.Customer(number, [dep.base], dep.stripe, "sk_test_browser", hits, lock)
        return scale_out.shop(customer, "open", path, tier)

    try:
        mixed.prepare(dep, settings, tmp)
        dep.env |= {"ORDER_CPU_OUT": str(out), "ORDER_CPU_PROFILE": "1" if args.profile else "0"}
        mixed.start(dep, settings, tmp)
        redis_server = mixed.redis_pid(dep.redis_url)
        for number in range(args.warmup):
            order(number)
        time.sleep(1)  # the last warm-up order's webhook
        started, cpu_before = time.time(), mixed.cpu_seconds(dep, redis_server)
        outcomes = [order(args.warmup + n) for n in range(args.orders)]
        time.sleep(1)  # the last order's webhook
        cpu_after = mixed.cpu_seconds(dep, redis_server)
    finally:
        mixed.stop(dep)  # the worker writes its figures as it exits
    placed = sum(
        1 for o in outcomes if o.result == "placed" and o.card_status == "requires_capture"
    )
    requests = [r for r in json.loads(out.read_text()) if r[0] >= started]
    by_step: dict[tuple[str, str], list[float]] = {}
    for _, method, path, cpu_ms in requests:
        by_step.setdefault((method, path), []).append(cpu_ms)
    print(f"\n{placed} of {args.orders} orders placed and authorised, after {args.warmup} warm-up")
    print("\n| request | per order | CPU ms median (min–max) | CPU ms per order |")
    print("| --- | ---: | ---: | ---: |")
    for (method, path), values in sorted(by_step.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"| {method} {path} | {len(values) / args.orders:.1f} | {statistics.median(values):.1f}"
            f" ({min(values):.1f}–{max(values):.1f}) | {sum(values) / args.orders:.1f} |"
        )
    total = sum(r[3] for r in requests) / args.orders
    print(f"| all the worker's requests | | | {total:.1f} |")
    print(
        "\nCPU ms per order by process group (bench/mixed.py's accounting over the measured orders):"
    )
    cpu = mixed.cpu_between(cpu_before, cpu_after)
    print(
        ", ".join(f"{group} {seconds / args.orders * 1000:.1f}" for group, seconds in cpu.items())
    )
    if args.profile:
        print()
        pstats.Stats(str(out) + ".prof").sort_stats("cumulative").print_stats(args.profile)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
