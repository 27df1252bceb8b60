"""The shop behind deploy/nginx/pharmacy.conf, as docs/deploy.md sets it up, on this machine.

nginx (Debian's package) with a self-signed certificate made by the openssl CLI, in front of gunicorn
with gunicorn.conf.py, on free ports. The client connects from 127.0.0.2 and nginx from 127.0.0.1, so
"the client's address" and "the proxy's address" can be told apart. Only ports, paths and the
certificate are swapped into the config; everything else is the file an operator installs.
"""

from __future__ import annotations

import getpass
import http.client
import json
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.live_gunicorn import ROOT, Gunicorn, free_port, server_env

pytestmark = pytest.mark.integration

CONFIG = ROOT / "deploy" / "nginx" / "pharmacy.conf"
HOST = "shop.example.com"
CLIENT_ADDRESS = "127.0.0.2"
MB = 1024 * 1024


def _unavailable(reason: str):
    import os

    if os.environ.get("CI"):
        pytest.fail(f"CI must run the behind-the-proxy test: {reason}")
    pytest.skip(reason)


def render(config: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in config, (
            f"deploy/nginx/pharmacy.conf no longer contains {old!r}: update this test"
        )
        config = config.replace(old, new)
    return config


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={HOST}",
            "-addext",
            f"subjectAltName=DNS:{HOST},IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class Proxy:
    """nginx in the foreground with the shop's config, answering as shop.example.com."""

    def __init__(self, folder: Path, *, upstream_port: int):
        self.folder, self.https_port, self.http_port = folder, free_port(), free_port()
        self.cert, key = self_signed_certificate(folder)
        self.static = folder / "staticfiles"
        self.static.mkdir()
        for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / temp).mkdir()
        site = render(
            CONFIG.read_text(),
            {
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "listen [::]:80;": "",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
                "/etc/letsencrypt/live/shop.example.com/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/shop.example.com/privkey.pem": str(key),
                "/srv/pharmacy/staticfiles/": f"{self.static}/",
            },
        )
        (folder / "pharmacy.conf").write_text(site)
        # The http {} block Debian's /etc/nginx/nginx.conf would wrap it in, with this test's own files.
        (folder / "nginx.conf").write_text(f"""
user {getpass.getuser()};
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/pharmacy.conf;
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        test = subprocess.run(
            [nginx, "-t", "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert test.returncode == 0, test.stderr
        self.process = subprocess.Popen(
            [
                nginx,
                "-c",
                str(folder / "nginx.conf"),
                "-e",
                str(folder / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/healthz")
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError((folder / "error.log").read_text())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict | None = None,
        https: bool = True,
    ) -> tuple[int, dict, bytes]:
        if https:
            context = ssl.create_default_context(cafile=str(self.cert))
            conn = http.client.HTTPSConnection(
                "127.0.0.1",
                self.https_port,
                context=context,
                timeout=30,
                source_address=(CLIENT_ADDRESS, 0),
            )
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.http_port, timeout=30, source_address=(CLIENT_ADDRESS, 0)
            )
        try:
            conn.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def behind_proxy(transactional_db, tmp_path):
    """gunicorn (gunicorn.conf.py, production proxy settings) behind nginx (deploy/nginx/pharmacy.conf)."""
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        _unavailable("nginx is not installed (apt-get install nginx; .ci/run does)")
    if not shutil.which("openssl"):
        _unavailable("the openssl command is not installed")
    env = server_env(
        DJANGO_SETTINGS_MODULE="tests.ops.proxy_settings",
        ALLOWED_HOSTS=HOST,
        BEHIND_PROXY="1",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="3600",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    # gunicorn's former default, which takes SCRIPT_NAME from a trusted proxy's headers: the proxy
    # alone must keep a client's SCRIPT_NAME out (gunicorn.conf.py no longer takes it at all).
    server = Gunicorn(
        env=env,
        log=tmp_path / "gunicorn.log",
        args=("--forwarder-headers", "SCRIPT_NAME,PATH_INFO"),
    )
    try:
        server.wait_ready()
        (tmp_path / "nginx").mkdir()
        proxy = Proxy(tmp_path / "nginx", upstream_port=server.port)
        try:
            yield proxy
        finally:
            proxy.stop()
    finally:
        server.stop()


def seen(proxy: Proxy, **headers: str) -> dict:
    status, _, body = proxy.request("GET", "/_proxy/seen/", headers=headers)
    assert status == 200, body[:500]
    return json.loads(body)


def multipart(size: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="prescription.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + b"%PDF"
        + b"\0" * (size - 4)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_the_shop_sees_the_clients_address_and_https_through_the_proxy(behind_proxy):
    assert seen(behind_proxy) == {
        "client_ip": CLIENT_ADDRESS,
        "is_secure": True,
        "script_name": "",
        "path": "/_proxy/seen/",
        "path_info": "/_proxy/seen/",
        "script_name_headers": {},
    }
    # Headers a client forges are overwritten or dropped by the proxy.
    forged = seen(
        behind_proxy,
        **{
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "http",
            "SCRIPT_NAME": "/admin",
            "Script-Name": "/admin",
        },
    )
    assert forged["client_ip"] == CLIENT_ADDRESS
    assert forged["is_secure"] is True
    assert (
        forged["script_name"] == ""
        and forged["path"] == "/_proxy/seen/"
        and forged["script_name_headers"] == {}
    )

    # A real page: with SECURE_SSL_REDIRECT on, it is served (not redirected) because the proxy says HTTPS.
    status, headers, body = behind_proxy.request("GET", "/products/")
    assert status == 200 and b"<html" in body
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_plain_http_is_redirected_and_static_files_come_from_the_proxy(behind_proxy):
    status, headers, _ = behind_proxy.request("GET", "/products/?page=2", https=False)
    assert status == 301 and headers["Location"] == f"https://{HOST}/products/?page=2"

    (behind_proxy.static / "css").mkdir()
    (behind_proxy.static / "css" / "site.0123abcd.css").write_text("body { color: #123; }")
    status, headers, body = behind_proxy.request("GET", "/static/css/site.0123abcd.css")
    assert status == 200 and body == b"body { color: #123; }"
    assert "immutable" in headers["Cache-Control"] and headers["Content-Type"] == "text/css"


def test_a_10_mb_prescription_upload_passes_the_proxy_and_11_mb_is_refused(behind_proxy):
    body, content_type = multipart(10 * MB)  # PRESCRIPTION_MAX_UPLOAD_BYTES
    status, _, answer = behind_proxy.request(
        "POST", "/_proxy/upload/", body=body, headers={"Content-Type": content_type}
    )
    assert status == 200, answer[:300]
    assert json.loads(answer) == {"bytes": 10 * MB}

    body, content_type = multipart(11 * MB)
    status, _, _ = behind_proxy.request(
        "POST", "/_proxy/upload/", body=body, headers={"Content-Type": content_type}
    )
    assert status == 413
