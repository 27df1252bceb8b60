"""The deployment files a pharmacy uses as they are: what they promise, read the way their tools read them.

No container engine can run here (docs/deploy.md says why), so the image and compose file are checked
as files; the commands they run are run outside a container in tests/ops/test_process_health.py.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ops.test_deploy_check import run_manage

ROOT = Path(__file__).resolve().parents[2]


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as docker compose's env_file and systemd's EnvironmentFile read them."""
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value for key, value in pairs}


def deploy_doc_export_line() -> str:
    """The export command of docs/deploy.md "Processes and releases", the lines ending in a backslash joined."""
    doc = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"^export PRODUCTION=1.*?(?<!\\)\n", doc, re.DOTALL | re.MULTILINE)
    assert match, "docs/deploy.md's first-deployment export line"
    return match.group(0).replace("\\\n", " ")


def test_the_documented_export_line_alone_passes_check_deploy():
    line = deploy_doc_export_line()
    # Only the blanks the reader fills in ("…") are filled here: a secret key of the right shape, a word elsewhere.
    line = line.replace("SECRET_KEY=…", f"SECRET_KEY={secrets.token_urlsafe(60)}").replace(
        "…", "example"
    )
    result = subprocess.run(
        ["bash", "-c", f"{line}\n{sys.executable} manage.py check --deploy --fail-level WARNING"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_example_filled_with_a_secret_key_passes_check_deploy():
    env = env_file(ROOT / ".env.example")
    assert env["SECRET_KEY"] == ""  # never a usable key in an example file
    assert env["FORWARDED_ALLOW_IPS"] != "*"
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**env, "SECRET_KEY": secrets.token_urlsafe(60)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, ``!`` re-includes, a pattern covers what is below it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        globs = [pattern, pattern.replace("**/", "")] if pattern.startswith("**/") else [pattern]
        names = candidates + ([parts[-1]] if pattern.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(name, glob) for name in names for glob in globs):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_local_data_out_of_the_image():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".env",
        ".env.production",
        ".venv/bin/python",
        "db.sqlite3",
        "var/private/prescription.pdf",
        "var/emails/1.log",
        ".git/HEAD",
        "staticfiles/app.css",
        "pharmacy/__pycache__/x.pyc",
    ):
        assert docker_ignored(path, patterns), path
    for path in (
        ".env.example",
        "manage.py",
        "pharmacy/settings.py",
        "deploy/healthcheck.py",
        "gunicorn.conf.py",
        "pyproject.toml",
        "templates/base.html",
        "fixtures/demo_catalog.json",
    ):
        assert not docker_ignored(path, patterns), path


def test_the_image_is_multi_stage_and_runs_as_an_unprivileged_user_with_a_web_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.MULTILINE)
    assert len(stages) >= 2
    runtime = dockerfile.split(f"AS {stages[-1]}", 1)[1]
    users = re.findall(r"^USER (\S+)", runtime, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert 'CMD ["python", "deploy/healthcheck.py", "web"]' in runtime


def test_compose_publishes_only_the_proxy_and_trusts_only_its_address():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    proxy_address = services["proxy"]["networks"]["backend"]["ipv4_address"]
    assert services["web"]["environment"]["FORWARDED_ALLOW_IPS"] == proxy_address
    for kind in ("web", "worker", "beat"):
        assert services[kind]["healthcheck"]["test"] == [
            "CMD",
            "python",
            "deploy/healthcheck.py",
            kind,
        ]
        assert services[kind]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[kind]["restart"] == "unless-stopped"
    assert "--enable-remote-control" in services["beat"]["command"]
    assert "migrate --noinput" in " ".join(services["migrate"]["command"])
    # The proxy gets the same nginx file as a host install, pointed at the web container.
    assert (
        "./deploy/nginx/pharmacy.conf:/etc/pharmacy/pharmacy.conf:ro"
        in services["proxy"]["volumes"]
    )
    assert "server 127.0.0.1:8000;" in (ROOT / "deploy" / "nginx" / "pharmacy.conf").read_text()


UNITS = ROOT / "deploy" / "systemd"


def test_systemd_units_restart_and_web_waits_for_the_migrations(tmp_path):
    units = {path.name: path.read_text() for path in UNITS.glob("*.service")}
    assert set(units) == {
        "pharmacy-web.service",
        "pharmacy-worker.service",
        "pharmacy-beat.service",
        "pharmacy-migrate.service",
        "pharmacy-backup.service",
    }
    for name in ("pharmacy-web.service", "pharmacy-worker.service", "pharmacy-beat.service"):
        assert re.search(r"^Restart=(always|on-failure)$", units[name], re.MULTILINE), name
    assert re.search(
        r"^Requires=pharmacy-migrate.service$", units["pharmacy-web.service"], re.MULTILINE
    )
    assert re.search(
        r"^After=.*pharmacy-migrate.service", units["pharmacy-web.service"], re.MULTILINE
    )
    assert "Type=oneshot" in units["pharmacy-migrate.service"]
    assert "--enable-remote-control" in units["pharmacy-beat.service"]
    # The nightly backup (docs/operations.md): a one-shot run of manage.py backup, started by its timer.
    assert (
        "Type=oneshot" in units["pharmacy-backup.service"]
        and "manage.py backup" in units["pharmacy-backup.service"]
    )
    units["pharmacy-backup.timer"] = (UNITS / "pharmacy-backup.timer").read_text()
    assert re.search(
        r"^OnCalendar=\*-\*-\* \d\d:\d\d:00$", units["pharmacy-backup.timer"], re.MULTILINE
    )
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    # systemd's own parser, with the install paths pointing at this checkout.
    venv_bin = str(Path(sys.executable).parent)
    for name, text in units.items():
        (tmp_path / name).write_text(
            text.replace("/srv/pharmacy/venv/bin", venv_bin).replace("/srv/pharmacy/app", str(ROOT))
        )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
