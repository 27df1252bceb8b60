#!/usr/bin/env python
"""A busy shop: catalog browsing while real orders are placed (issue #26).

    .venv/bin/python bench/mixed.py --redis-url redis://127.0.0.1:6379 \\
        --checkout main=/path/to/main --checkout cache=/path/to/branch --rates 0,1,5,20 --rounds 2
    .venv/bin/python bench/mixed.py --redis-url redis://127.0.0.1:6379 --pin ...   # see below

For each checkout (``LABEL=PATH``; without any, this one) it prepares a deployment of its own, as
``bench/bench.py`` does: a PostgreSQL database (``--database-prefix`` + label; created if
missing, migrated, demo catalog), a Redis database for cache and sessions, ``collectstatic``,
gunicorn with the production settings (``PRODUCTION=1``, the checkout's ``gunicorn.conf.py``,
``--workers``), and its own localstripe with a webhook to that server; once started, ``--warm``
seconds of orders (as fast as they go) and browsing, not measured, warm every worker's order path.
Then, for each order rate and round (the checkouts alternated, their order swapped every round):

* a second loop places real orders at ``rate`` per second (up to ``--order-concurrency`` at once;
  "as fast as it goes" when the server cannot keep up): a new guest each time, product page, add
  to cart, checkout page, checkout post, the card confirmed at localstripe as Stripe.js does, the
  order page (``bench/scale_out.py``'s customer). Half the orders buy a pack whose stock is
  tracked (a million in stock, so it never runs out), half a pack without a stock count;
* after ``--warmup`` seconds, ``wrk -t2 -c8`` browses ``--urls`` catalog pages (home, listing
  pages, categories, searches, product pages, the ordered products among them) in turn for
  ``--duration`` seconds and counts the page cache's answers from its ``X-Catalog-Cache`` header.

It prints, per checkout and rate, catalog req/s, p50/p99, the hit ratio (hits / (hits + misses))
and the orders placed per second, with the median and range over the rounds. Everything is on
127.0.0.1 and bounded: each measurement stops after warm-up + duration, then waits for the orders
in flight (at most ``scale_out.TIMEOUT`` per request). ``--no-page-cache`` runs the same with
``CATALOG_PAGE_CACHE=0``. Figures go to ``var/bench/mixed.json``.

**The Celery worker.** As deployed, emails (and the receipt PDF a captured order's receipt email
carries) go to a Celery worker through the deployment's Redis, started at ``--worker-nice`` (19,
as ``deploy/systemd/pharmacy-worker.service`` and the compose file run it): it takes the CPU the
web workers leave, and its queue waits while the machine is busy. Before each window the bench
waits for the last window's tasks to be taken (at most 300 s) and reports how many were still
queued at the window's end. ``--eager`` runs the tasks inside the requests that queue them
instead (the bench's setting before the worker, ``CELERY_TASK_ALWAYS_EAGER=1``).

**Where the CPU goes.** Over each measured window it reads the CPU seconds of each process
(utime + stime from ``/proc/<pid>/stat``) of gunicorn (master and workers), PostgreSQL (the
server's own processes and this deployment's backends; other databases' backends, someone else's
tests say, are not the shop's), the Redis server behind ``--redis-url``, localstripe, this process
(the order loop), wrk, and the machine's busy time (``/proc/stat``); "other" is the machine minus
those groups. It prints them per run and as a table, and derives the shop's CPU per order:
gunicorn + the worker + PostgreSQL + Redis in the window, minus the catalog requests at the
no-order runs' shop CPU per catalog request (rate 0 must be among ``--rates``), divided by the
orders placed in the window (orders in flight at its edges make this approximate; the worker's
share lands in whichever window it runs in).

**``--pin``** keeps the load generators off the shop's CPU, as a load test on one machine should:
wrk (``taskset -c 0``), localstripe (Stripe in production, not on the shop's machine) and this
process (``os.sched_setaffinity``; the order loop's threads inherit it) on CPU 0; gunicorn
(``taskset -c 1``) and the *running* PostgreSQL and Redis (the postmaster, the Redis server and
their existing children; backends forked meanwhile inherit it) on CPU 1 until the run ends, when
every one of them gets its CPUs back. The output says which CPUs each side had, read back from
the processes. PostgreSQL is the machine's server: while pinned, anyone else's connections to it
run on CPU 1 too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_out  # the customer who places an order through localstripe

import bench  # server settings, database and Redis helpers

STRIPE_SECRET = "sk_test_bench_mixed"
WEBHOOK_SECRET = "whsec_bench_mixed"

# Run in the checkout's manage.py shell: the pages to browse and the packs to order, as JSON.
PREPARE = """
import json, math
from django.urls import reverse
from catalog.models import Category, LegalClass, PackageTier, Product

wanted = int({urls})
listing = reverse("catalog:product_list")
products = Product.objects.filter(is_published=True).order_by("slug")
pages = math.ceil(products.count() / 24)
tiers = PackageTier.objects.filter(
    is_active=True, dosage__product__is_published=True,
    dosage__product__legal_class=LegalClass.GENERAL_SALE,
).select_related("dosage__product").order_by("dosage__product__slug", "id")
open_tier = tiers.filter(stock__isnull=True).first()
tracked = tiers.exclude(dosage__product=open_tier.dosage.product).first()
PackageTier.objects.filter(pk=tracked.pk).update(stock=1_000_000)
ordered = [open_tier.dosage.product.get_absolute_url(), tracked.dosage.product.get_absolute_url()]
paths = [reverse("catalog:home"), listing] + [f"{{listing}}?page={{n}}" for n in range(2, min(pages, 4) + 1)]
paths += [c.get_absolute_url() for c in Category.objects.order_by("slug")[:6]]
paths += [f"{{listing}}?q={{w}}" for w in ("pain", "allergy", "sleep", "skin", "cold", "acid")]
paths += ordered
paths += [p.get_absolute_url() for p in products if p.get_absolute_url() not in ordered]
print("MIXED_PREPARED", json.dumps({{
    "paths": paths[:wanted],
    "orders": [[ordered[0], open_tier.pk], [ordered[1], tracked.pk]],
}}))
"""


@dataclass
class Deployment:
    label: str
    checkout: Path
    database_url: str
    redis_url: str
    port: int = 0
    stripe_port: int = 0
    env: dict = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    orders: list[tuple[str, int]] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    commit: str = ""
    localstripe_pid: int = 0
    gunicorn_pid: int = 0
    worker_pid: int = 0

    @property
    def base(self) -> str:
        return f"http://{bench.HOST}:{self.port}"

    @property
    def stripe(self) -> str:
        return f"http://{bench.HOST}:{self.stripe_port}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((bench.HOST, 0))
        return sock.getsockname()[1]


def manage(dep: Deployment, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=dep.checkout,
        env=dep.env,
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"{dep.label}: manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def prepare(dep: Deployment, args: argparse.Namespace, tmp: Path) -> None:
    dep.port, dep.stripe_port = free_port(), free_port()
    ns = argparse.Namespace(
        database_url=dep.database_url, redis_url=dep.redis_url, no_page_cache=args.no_page_cache
    )
    dep.env = bench.server_env(ns) | {
        "SECRET_KEY": secrets.token_urlsafe(60),
        "STATIC_ROOT": str(tmp / f"static-{dep.label}"),
        "STRIPE_API_BASE": dep.stripe,
        "STRIPE_JS_URL": f"{dep.stripe}/js.stripe.com/v3/",
        "STRIPE_SECRET_KEY": STRIPE_SECRET,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_bench_mixed",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CACHE_KEY_PREFIX": f"mixed-{dep.label}",
    }
    if not args.eager:
        # As deployed: emails (and the receipt PDFs they carry) go to a Celery worker through the
        # deployment's Redis, instead of being rendered inside the customer's request.
        dep.env |= {"CELERY_TASK_ALWAYS_EAGER": "0", "CELERY_BROKER_URL": dep.redis_url}
    dep.commit = subprocess.run(
        ["git", "-C", str(dep.checkout), "log", "-1", "--format=%h %s"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.strip()[:72]
    bench.log(f"{dep.label}: {dep.checkout} at {dep.commit}")
    bench.ensure_database(dep.database_url)
    bench.flush_redis(dep.redis_url)
    manage(dep, "migrate", "--noinput")
    manage(dep, "generate_catalog", "--delete")
    manage(dep, "loaddata", "demo_catalog")
    manage(dep, "collectstatic", "--noinput")
    out = manage(dep, "shell", "-c", PREPARE.format(urls=args.urls))
    prepared = json.loads(out.split("MIXED_PREPARED ", 1)[1])
    dep.paths = prepared["paths"]
    dep.orders = [tuple(o) for o in prepared["orders"]]


def pinned(args: argparse.Namespace, cpus: set[int]) -> list[str]:
    """The command prefix that runs a program on ``cpus`` with --pin (nothing without)."""
    return ["taskset", "-c", cpus_text(cpus)] if args.pin else []


def start(dep: Deployment, args: argparse.Namespace, tmp: Path) -> None:
    # localstripe writes its whole store to /tmp/localstripe.pickle on every change (a cost that
    # grows with every order); the benchmark's mock keeps it in memory only.
    launcher = (
        "import sys; from localstripe.resources import Store; "
        "Store.dump_to_disk = lambda self: None; "
        f"sys.argv = ['localstripe', '--port', '{dep.stripe_port}', '--from-scratch']; "
        "from payments.localstripe_dev import main; main()"
    )
    with open(tmp / f"localstripe-{dep.label}.log", "w") as log_file:
        dep.processes.append(
            subprocess.Popen(
                [*pinned(args, LOAD_CPUS), sys.executable, "-c", launcher],
                cwd=bench.BASE_DIR,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    with open(tmp / f"gunicorn-{dep.label}.log", "w") as log_file:
        dep.processes.append(
            subprocess.Popen(
                [
                    *pinned(args, SHOP_CPUS),
                    str(Path(sys.executable).with_name("gunicorn")),
                    "pharmacy.wsgi:application",
                    "--bind",
                    f"{bench.HOST}:{dep.port}",
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "warning",
                    # bench/order_cpu.py's settings (the checkout's, plus its hooks), if any
                    *(["--config", str(args.gunicorn_config)] if args.gunicorn_config else []),
                ],
                cwd=dep.checkout,
                env=dep.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    # taskset runs the program in its own place (exec), so these are localstripe's and gunicorn's.
    dep.localstripe_pid, dep.gunicorn_pid = (proc.pid for proc in dep.processes[-2:])
    if not args.eager:
        start_worker(dep, args, tmp)
    deadline = time.monotonic() + 60
    for url in (f"{dep.stripe}/js.stripe.com/v3/", f"{dep.base}/healthz"):
        while True:
            if any(p.poll() is not None for p in dep.processes):
                raise SystemExit(f"{dep.label}: a server exited; see {tmp}")
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{dep.label}: {url} did not answer within 60 s") from None
                time.sleep(0.2)
    data = urllib.parse.urlencode(
        {"url": f"{dep.base}/stripe/webhook/", "secret": WEBHOOK_SECRET}
    ).encode()
    urllib.request.urlopen(f"{dep.stripe}/_config/webhooks/bench", data=data, timeout=5).read()


def start_worker(dep: Deployment, args: argparse.Namespace, tmp: Path) -> None:
    """The Celery worker as deploy/systemd/pharmacy-worker.service runs it: at a lower CPU
    priority (``Nice=``), so emails and receipt PDFs wait while the machine is busy serving pages
    (the outbox keeps them for hours; a customer does not wait for one)."""
    with open(tmp / f"worker-{dep.label}.log", "w") as log_file:
        dep.processes.append(
            subprocess.Popen(
                [
                    *pinned(args, SHOP_CPUS),
                    "nice",
                    "-n",
                    str(args.worker_nice),
                    str(Path(sys.executable).with_name("celery")),
                    "-A",
                    "pharmacy",
                    "worker",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=dep.checkout,
                env=dep.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    dep.worker_pid = dep.processes[-1].pid  # taskset and nice exec the worker in their place


def stop(dep: Deployment) -> None:
    for proc in dep.processes:
        bench.stop(proc)


# --- Where the CPU goes, and who may use which CPU ------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")
# The process groups accounted in each measured window; the shop is the first three.
GROUPS = ("gunicorn", "worker", "postgres", "redis", "localstripe", "bench", "wrk")
SHOP = ("gunicorn", "worker", "postgres", "redis")
LOAD_CPUS, SHOP_CPUS = {0}, {1}  # --pin


def processes() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, name, CPU seconds so far: utime + stime, all threads)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue  # it exited meanwhile
        # "pid (name) state ppid ...": the name may hold spaces; fields count from "state" (3).
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime are fields 14 and 15
        table[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICK)
    return table


def descendants(table: dict, roots: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def postmasters(table: dict) -> list[int]:
    """PostgreSQL's postmaster(s): a ``postgres`` process whose parent is not one."""
    return [
        pid
        for pid, (parent, name, _) in table.items()
        if name == "postgres" and table.get(parent, (0, "", 0))[1] != "postgres"
    ]


def redis_pid(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("server")["process_id"])


def serves_another_database(pid: int, database: str) -> bool:
    """A PostgreSQL backend's title is "postgres: [cluster: ]user database host(port) state"."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            title = cmdline.read().decode(errors="replace")
    except OSError:
        return False
    backend = re.search(r" (\S+) (\S+) (?:\S+\(\d+\)|\[local\])", title)
    return bool(backend) and backend.group(2) != database


def cpu_seconds(dep: Deployment, redis_server: int) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each process of each group (the machine's and this process's
    children's under pid 0). PostgreSQL: the server's own processes and this deployment's
    backends, not the backends of other databases (someone else's tests, say)."""
    table = processes()
    database = urllib.parse.urlsplit(dep.database_url).path.lstrip("/")

    def group(pids) -> dict[int, float]:
        return {pid: table[pid][2] for pid in pids}

    me = os.times()  # this process (the order loop's threads) and its reaped children (wrk)
    with open("/proc/stat") as stat_file:
        # cpu  user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
        ticks = [int(x) for x in stat_file.readline().split()[1:9]]
    postgres = descendants(table, postmasters(table))
    return {
        "gunicorn": group(descendants(table, [dep.gunicorn_pid])),
        "worker": group(descendants(table, [dep.worker_pid]) if dep.worker_pid else ()),
        "postgres": group(p for p in postgres if not serves_another_database(p, database)),
        "redis": group([redis_server]),
        "localstripe": group(descendants(table, [dep.localstripe_pid])),
        "bench": {os.getpid(): me.user + me.system},
        "wrk": {0: me.children_user + me.children_system},
        "machine": {0: (sum(ticks) - ticks[3] - ticks[4]) / TICK},
    }


def cpu_between(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per group between two ``cpu_seconds``: per process, so a process that started
    in between counts whole and one that ended in between loses its share (a gunicorn worker
    lives as long as the run, a PostgreSQL backend of the shop up to ``CONN_MAX_AGE``, 60 s)."""
    cpu = {
        group: sum(seconds - before[group].get(pid, 0.0) for pid, seconds in pids.items())
        for group, pids in after.items()
    }
    cpu["other"] = cpu["machine"] - sum(cpu[k] for k in GROUPS)
    return cpu


def set_cpus(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (Linux sets affinity per thread; new ones inherit their creator's)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), cpus)


def cpus_text(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


@contextlib.contextmanager
def services_on(cpus: set[int], redis_server: int):
    """PostgreSQL (the postmaster and its children; backends forked meanwhile inherit it) and
    Redis on ``cpus`` until the block ends, then every one of them back where it was."""
    table = processes()
    roots = postmasters(table) + [redis_server]
    before = {}
    for root in roots:
        for pid in descendants(table, [root]):
            with contextlib.suppress(ProcessLookupError):
                before[pid] = (root, os.sched_getaffinity(pid))
    try:
        for pid in before:
            set_cpus(pid, cpus)
        yield
    finally:
        table = processes()
        originals = {root: before[root][1] for root in roots if root in before}
        for root, original in originals.items():
            for pid in descendants(table, [root]):
                set_cpus(pid, before[pid][1] if pid in before else original)
        bench.log(
            f"PostgreSQL and Redis back on CPUs {cpus_text(set().union(*originals.values()))}"
        )


def cpus_used(dep: Deployment, redis_server: int) -> dict[str, str]:
    """The CPUs each side may run on now, read back from the processes themselves."""
    table = processes()

    def allowed(pids) -> str:
        cpus: set[int] = set()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                cpus |= os.sched_getaffinity(pid)
        return cpus_text(cpus)

    shop = descendants(table, [dep.gunicorn_pid, dep.worker_pid, redis_server, *postmasters(table)])
    return {
        "shop (gunicorn, the Celery worker, PostgreSQL, Redis)": allowed(shop),
        "load (localstripe, the order loop)": allowed(
            descendants(table, [dep.localstripe_pid]) | {os.getpid()}
        ),
    }


class OrderLoop:
    """Places orders at ``rate`` per second from a background thread until ``stop()``."""

    def __init__(self, dep: Deployment, rate: float, concurrency: int):
        self.dep, self.rate = dep, rate
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.slots = threading.Semaphore(concurrency)
        self.finished = threading.Event()
        self.lock = threading.Lock()
        self.done: list[tuple[float, scale_out.Outcome]] = []
        self.hits: list[scale_out.Hit] = []
        self.number = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OrderLoop:
        if self.rate > 0:
            self.thread.start()
        return self

    def _run(self) -> None:
        interval, due = 1 / self.rate, time.monotonic()
        while not self.finished.is_set():
            if not self.slots.acquire(timeout=0.5):
                continue  # every slot busy: the server is behind, orders start as slots free up
            self.number += 1
            self.pool.submit(self._one, self.number)
            due = max(due + interval, time.monotonic())
            self.finished.wait(max(0.0, due - time.monotonic()))

    def _one(self, number: int) -> None:
        path, tier = self.dep.orders[number % len(self.dep.orders)]
        customer = scale_out.Customer(
            number, [self.dep.base], self.dep.stripe, "sk_test_browser", self.hits, self.lock
        )
        try:
            outcome = scale_out.shop(customer, "open", path, tier)
        except Exception as exc:  # noqa: BLE001 - a reset or timeout is an outcome to count
            outcome = scale_out.Outcome(number, "open", "error", message=repr(exc))
        finally:
            self.slots.release()
        with self.lock:
            self.done.append((time.monotonic(), outcome))

    def stop(self) -> None:
        self.finished.set()
        if self.thread.is_alive():
            self.thread.join()
        self.pool.shutdown(wait=True)

    def between(self, start: float, end: float) -> dict:
        ended = [o for t, o in self.done if start <= t <= end]
        placed = [
            o
            for o in ended
            if o.result == "placed" and o.card_status == "requires_capture" and o.order_page == 200
        ]
        steps: dict[str, list[float]] = {}
        for hit in self.hits:
            steps.setdefault(hit.step, []).append(hit.ms)
        return {
            "order_step_p50_ms": {k: round(statistics.median(v), 1) for k, v in steps.items()},
            "orders_ended": len(ended),
            "orders_placed": len(placed),
            "orders_per_s": len(placed) / (end - start),
            "order_errors": [o.message for o in ended if o not in placed][:5],
            "order_5xx": sum(1 for h in self.hits if h.status >= 500),
        }


def run_wrk(dep: Deployment, args: argparse.Namespace, seconds: int) -> dict:
    result = subprocess.run(
        [
            *pinned(args, LOAD_CPUS),
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(bench.BENCH_DIR / "mixed.lua"),
            dep.base,
        ],
        env={**os.environ, "MIXED_PATHS": "\n".join(dep.paths)},
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    match = re.search(r"^MIXED_JSON (.*)$", result.stdout, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["p50_ms"], data["p99_ms"] = data["p50_us"] / 1000, data["p99_us"] / 1000
    answered = data["hits"] + data["misses"]
    data["hit_ratio"] = data["hits"] / answered if answered else None
    return data


def warm_up(dep: Deployment, args: argparse.Namespace) -> None:
    """Once, after start: orders as fast as they go while wrk browses, for ``--warm`` seconds, not
    measured. A worker's first orders are slow (WeasyPrint's import for the receipt PDF, templates
    compiled): without this the first run with orders placed none in its window."""
    if not args.warm:
        return
    loop = OrderLoop(dep, 20, args.order_concurrency).start()
    try:
        run_wrk(dep, args, args.warm)
    finally:
        loop.stop()
    placed = loop.between(0, time.monotonic())["orders_placed"]
    bench.log(f"{dep.label}: warmed up, {placed} orders placed in {args.warm} s and after")


def queued_tasks(dep: Deployment) -> int:
    """Tasks waiting in the Celery worker's queue (Redis list "celery", the default queue)."""
    import redis

    return int(redis.Redis.from_url(dep.redis_url).llen("celery"))


def drain(dep: Deployment, limit: float = 300) -> float:
    """Waits until the worker has taken every queued task (at most ``limit`` seconds) and a
    moment more for the one it holds, so each window starts without the last one's emails."""
    started = time.monotonic()
    while dep.worker_pid and queued_tasks(dep) and time.monotonic() - started < limit:
        time.sleep(1)
    if dep.worker_pid:
        time.sleep(2)
    return time.monotonic() - started


def measure(dep: Deployment, rate: float, args: argparse.Namespace, redis_server: int) -> dict:
    drained_s = drain(dep)
    loop = OrderLoop(dep, rate, args.order_concurrency).start()
    try:
        if args.warmup:
            run_wrk(dep, args, args.warmup)
        cpu_before = cpu_seconds(dep, redis_server)
        started = time.monotonic()
        result = run_wrk(dep, args, args.duration)
        ended = time.monotonic()
        cpu_after = cpu_seconds(dep, redis_server)
        cpus = cpus_used(dep, redis_server)
        queued = queued_tasks(dep) if dep.worker_pid else None
    finally:
        loop.stop()
    result |= loop.between(started, ended)
    cpu = cpu_between(cpu_before, cpu_after)
    result |= {
        "load": os.getloadavg()[0],
        "rate_asked": rate,
        "window_s": ended - started,
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "cpus": cpus,
        # The emails (and receipt PDFs) still waiting for the worker when the window ended, and
        # how long the previous window's took to drain before this one began.
        "tasks_queued_at_end": queued,
        "drained_before_s": round(drained_s, 1),
    }
    return result


def spread(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def table(deployments: list[Deployment], rates: list[float], results: dict) -> str:
    lines = [
        (
            "| checkout | orders/s asked | orders/s placed | catalog req/s | hit ratio "
            "| catalog p50 ms | catalog p99 ms | failed |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in rates:
        for dep in deployments:
            runs = results[dep.label][str(rate)]
            failed = sum(
                r["not_200"] + r["errors_connect"] + r["errors_read"] + r["errors_timeout"]
                for r in runs
            ) + sum(r["order_5xx"] for r in runs)
            lines.append(
                f"| {dep.label} | {rate:g} | {spread([r['orders_per_s'] for r in runs], '.1f')} | "
                f"{spread([r['rps'] for r in runs], ',.0f')} | "
                f"{spread([r['hit_ratio'] for r in runs], '.2f')} | "
                f"{spread([r['p50_ms'] for r in runs], '.1f')} | "
                f"{spread([r['p99_ms'] for r in runs], '.0f')} | {failed} |"
            )
    return "\n".join(lines)


def per_order(deployments: list[Deployment], rates: list[float], results: dict) -> None:
    """Adds each run's shop CPU and, with orders, what the orders cost: the shop's CPU minus the
    catalog requests at the no-order runs' CPU per catalog request (same checkout), per order."""
    for dep in deployments:
        runs = results[dep.label]
        for r in (r for rate in rates for r in runs[str(rate)]):
            r["shop_cpu_s"] = round(sum(r["cpu_s"][k] for k in SHOP), 3)
        base = [r["shop_cpu_s"] / r["requests"] for r in runs.get(str(0.0), []) if r["requests"]]
        if not base:
            continue
        per_request = statistics.median(base)
        for rate in rates:
            for r in runs[str(rate)]:
                r["shop_ms_per_catalog_request_no_orders"] = round(per_request * 1000, 3)
                if rate and r["orders_placed"]:
                    orders_cpu = r["shop_cpu_s"] - per_request * r["requests"]
                    r["shop_ms_per_order"] = round(orders_cpu / r["orders_placed"] * 1000, 1)
                    for group in ("localstripe", "bench"):
                        r[f"{group}_ms_per_order"] = round(
                            r["cpu_s"][group] / r["orders_placed"] * 1000, 1
                        )


def cpu_table(deployments: list[Deployment], rates: list[float], results: dict) -> str:
    names = {"postgres": "PostgreSQL", "redis": "Redis", "bench": "order loop"}
    lines = [
        "| checkout | orders/s asked | "
        + " | ".join(names.get(g, g) for g in GROUPS)
        + " | other | shop ms per catalog request (no orders) | shop ms per order "
        "| localstripe ms per order | order loop ms per order |",
        "| --- | ---: |" + " ---: |" * (len(GROUPS) + 5),
    ]
    for rate in rates:
        for dep in deployments:
            runs = results[dep.label][str(rate)]
            cells = [
                spread([r["cpu_s"][g] / r["window_s"] for r in runs], ".2f")
                for g in (*GROUPS, "other")
            ]
            cells.append(
                spread([r["shop_cpu_s"] / r["requests"] * 1000 for r in runs], ".2f")
                if not rate
                else ""
            )
            cells += [
                spread([r.get(f"{k}_ms_per_order") for r in runs], ".1f") if rate else ""
                for k in ("shop", "localstripe", "bench")
            ]
            lines.append(f"| {dep.label} | {rate:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a checkout to measure (repeat to compare; default: this one, labelled 'this')",
    )
    parser.add_argument(
        "--database-prefix",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pharmacy_bench"
        )
        + "_mixed",
        help="each checkout's database is this + '_' + its label",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
        help="a Redis server (any database number is replaced): checkout N uses database 11+N, "
        "flushed",
    )
    parser.add_argument("--rates", default="0,1,5,20", help="orders per second, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of each run not measured")
    parser.add_argument(
        "--warm",
        type=int,
        default=10,
        help="seconds of orders (as fast as they go) and browsing once after start, not measured",
    )
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--order-concurrency", type=int, default=8, help="orders in flight at most")
    parser.add_argument("--urls", type=int, default=30, help="catalog pages browsed in turn")
    parser.add_argument("--no-page-cache", action="store_true", help="CATALOG_PAGE_CACHE=0")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the load generators (wrk, localstripe, this process) on CPU 0, the shop (gunicorn, "
        "and the running PostgreSQL and Redis until the end) on CPU 1",
    )
    parser.add_argument(
        "--eager",
        action="store_true",
        help="no Celery worker: tasks (emails, receipt PDFs) run inside the request that queues them",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=19,
        help="the Celery worker's nice level (deploy/systemd/pharmacy-worker.service's Nice=)",
    )
    parser.add_argument("--json", type=Path, default=bench.VAR / "mixed.json")
    parser.set_defaults(gunicorn_config=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    rates = [float(r) for r in args.rates.split(",")]
    deployments = []
    for number, spec in enumerate(args.checkout or [f"this={bench.BASE_DIR}"]):
        label, _, path = spec.partition("=")
        checkout = Path(path).resolve()
        if not (checkout / "manage.py").exists() or not re.fullmatch(r"[a-z0-9_]+", label):
            raise SystemExit(f"--checkout {spec}: want LABEL=PATH (label: a-z0-9_) of a checkout")
        deployments.append(
            Deployment(
                label=label,
                checkout=checkout,
                database_url=f"{args.database_prefix}_{label}",
                redis_url=urllib.parse.urlunsplit(
                    urllib.parse.urlsplit(args.redis_url)._replace(path=f"/{11 + number}")
                ),
            )
        )
    bench.VAR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    results: dict = {dep.label: {str(rate): [] for rate in rates} for dep in deployments}
    load_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        for dep in deployments:
            prepare(dep, args, tmp)
        redis_server = redis_pid(args.redis_url)
        if args.pin:
            # This process first: its threads (the order loop) and children (localstripe, wrk)
            # inherit it; gunicorn is started with taskset on the shop's CPU.
            set_cpus(os.getpid(), LOAD_CPUS)
            stack.enter_context(services_on(SHOP_CPUS, redis_server))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        for dep in deployments:
            stack.callback(stop, dep)
            start(dep, args, tmp)
            warm_up(dep, args)
        bench.log(
            f"browsing {len(deployments[0].paths)} catalog pages: {' '.join(deployments[0].paths)}"
        )
        for round_number in range(args.rounds):
            order = deployments if round_number % 2 == 0 else deployments[::-1]
            for rate in rates:
                for dep in order:
                    r = measure(dep, rate, args, redis_server)
                    results[dep.label][str(rate)].append(r)
                    bench.log(
                        f"round {round_number + 1} {dep.label} {rate:g} orders/s asked: "
                        f"{r['orders_per_s']:.1f} placed/s, catalog {r['rps']:.0f} req/s, "
                        f"hit ratio {r['hit_ratio'] if r['hit_ratio'] is None else round(r['hit_ratio'], 3)}, "
                        f"p99 {r['p99_ms']:.0f} ms, load {r['load']:.1f}"
                        + (f"; order steps p50 ms {r['order_step_p50_ms']}" if rate else "")
                        + (f"; order problems: {r['order_errors']}" if r["order_errors"] else "")
                    )
                    bench.log(
                        f"  CPU s in {r['window_s']:.1f} s: "
                        + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_s"].items())
                        + f"; CPUs {r['cpus']}"
                        + (
                            f"; tasks queued at the end {r['tasks_queued_at_end']}, "
                            f"waited {r['drained_before_s']} s for the last window's"
                            if r["tasks_queued_at_end"] is not None
                            else ""
                        )
                    )
    per_order(deployments, rates, results)
    summary = table(deployments, rates, results)
    cpu_summary = cpu_table(deployments, rates, results)
    cpus = results[deployments[0].label][str(rates[0])][0]["cpus"]
    print(
        f"\nMixed workload: wrk -t{args.threads} -c{args.connections} over {len(deployments[0].paths)} "
        f"catalog pages, {args.duration} s after {args.warmup} s warm-up, {args.rounds} rounds "
        f"alternated, gunicorn {args.workers} workers; load average {load_start[0]:.1f} at the "
        f"start, {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs; median (range)\n"
    )
    for dep in deployments:
        print(f"{dep.label}: {dep.checkout} at {dep.commit}")
    print(
        ("pinned (--pin): " if args.pin else "not pinned: ")
        + "; ".join(f"{side} on CPUs {c}" for side, c in cpus.items())
        + (f"; wrk on CPU {cpus_text(LOAD_CPUS)} (taskset)" if args.pin else "")
    )
    print()
    print(summary)
    print(
        "\nCPU per process group: CPU seconds per second of the measured window (2 = both cores), "
        "median (range); 'other' is the rest of the machine's busy time\n"
    )
    print(cpu_summary)
    args.json.write_text(
        json.dumps(
            {
                "checkouts": {
                    d.label: {"path": str(d.checkout), "commit": d.commit} for d in deployments
                },
                "paths": deployments[0].paths,
                "pin": args.pin,
                "cpus": cpus,
                "results": results,
                "table": summary,
                "cpu_table": cpu_summary,
            },
            indent=2,
        )
    )
    bench.log(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
