"""The health checks the image and compose file run (deploy/healthcheck.py), run here outside a container.

Each process type under production settings: the web check passes where a probe sending Host
127.0.0.1 gets 400, and fails once gunicorn is gone; the worker's and beat's checks pass only while
that process runs (beat's check is beat's own, not a web check with nothing listening).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.live_gunicorn import HEALTHCHECK, ROOT, Gunicorn, server_env
from tests.resources import redis_url

pytestmark = pytest.mark.integration

PRODUCTION = {
    "PRODUCTION": "1",
    "ALLOWED_HOSTS": "shop.example.com,.shop.example.com",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "STATIC_MANIFEST": "0",  # no collectstatic in a test; everything else as in production
}


def healthcheck(kind: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), kind],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_web_check_passes_under_production_hosts_where_a_bare_address_gets_400(
    transactional_db, tmp_path
):
    server = Gunicorn(env=server_env(**PRODUCTION), log=tmp_path / "gunicorn.log")
    with server:
        assert healthcheck("web", server.env).returncode == 0
        with pytest.raises(urllib.error.HTTPError) as refused:  # what the former HEALTHCHECK did
            urllib.request.urlopen(f"{server.base}/healthz", timeout=5)
        assert refused.value.code == 400
    stopped = healthcheck("web", server.env)
    assert stopped.returncode == 1 and "no answer" in stopped.stderr


@pytest.fixture
def broker():
    url = redis_url("process_health")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).flushdb()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the process health test: no Redis at {url}")
        pytest.skip(f"no Redis at {url}")
    return url


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def until_healthy(
    kind: str, env: dict[str, str], process: subprocess.Popen, log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthcheck(kind, env).returncode == 0:
            return
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    pytest.fail(f"{kind} never passed its health check:\n{log.read_text()[-3000:]}")


def test_worker_and_beat_each_pass_their_own_check_only_while_running(
    transactional_db, broker, tmp_path
):
    env = server_env(**PRODUCTION, REDIS_URL=broker, CELERY_TASK_ALWAYS_EAGER="0")
    celery = str(Path(sys.executable).with_name("celery"))
    assert healthcheck("worker", env).returncode == 1  # nothing running yet
    assert healthcheck("beat", env).returncode == 1

    worker = start(
        [celery, "-A", "pharmacy", "worker", "-P", "solo", "--loglevel", "INFO"],
        env,
        tmp_path / "worker.log",
    )
    try:
        until_healthy("worker", env, worker, tmp_path / "worker.log")
        assert healthcheck("beat", env).returncode == 1  # a worker does not make beat healthy
        # The command of docker-compose.yml and pharmacy-beat.service.
        beat = start(
            [
                celery,
                "-A",
                "pharmacy",
                "beat",
                "--loglevel",
                "INFO",
                "--enable-remote-control",
                "--schedule",
                str(tmp_path / "celerybeat-schedule"),
            ],
            env,
            tmp_path / "beat.log",
        )
        try:
            until_healthy("beat", env, beat, tmp_path / "beat.log")
        finally:
            stop(beat)
        assert healthcheck("beat", env).returncode == 1
    finally:
        stop(worker)
    assert healthcheck("worker", env).returncode == 1
