"""Bodies over the limit are refused with 413 before they are read, under gunicorn
exactly as the Procfile runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.test import Client

from core.middleware import UPLOAD_BODY_LIMITS

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _procfile_web() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.removeprefix("web:").strip()


@pytest.fixture(scope="module")
def gunicorn():
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DREAMPIXEL_ENV": "development",
        "DEBUG": "false",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    }
    process = subprocess.Popen(  # noqa: S602 (the Procfile's own shell line, as a PaaS runs it)
        _procfile_web(), shell=True, cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        os.killpg(process.pid, signal.SIGTERM)
        pytest.fail("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
    yield port
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def _post_headers_only(port: int, path: str, length: int) -> bytes:
    """Announce `length` bytes, send a few KB of them, and read what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--xyz\r\n" + b"a" * 4096)
        # A server that read the body would wait here for the other 200 MB until the timeout.
        return sock.recv(4096)


def test_a_200_mb_post_to_the_login_page_is_refused_before_it_is_read(gunicorn):
    started = time.monotonic()
    answer = _post_headers_only(gunicorn, "/accounts/login/", 200 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 3


def test_a_batch_upload_may_be_larger_but_not_without_bound(gunicorn):
    assert _post_headers_only(gunicorn, "/batches/new/", 150 * 1024 * 1024).startswith(b"HTTP/1.1 413")


def test_the_procfile_trusts_forwarded_headers_only_from_configured_proxies():
    expand = ["bash", "-c", f"set -f; printf '%s\\n' {_procfile_web()}"]
    default = subprocess.run(expand, capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True)
    assert "--forwarded-allow-ips=127.0.0.1,::1" in default.stdout.splitlines()
    configured = subprocess.run(
        expand, capture_output=True, text=True, env={"PATH": os.environ["PATH"], "FORWARDED_ALLOW_IPS": "10.0.0.0/8"},
        check=True,
    )  # fmt: skip
    assert "--forwarded-allow-ips=10.0.0.0/8" in configured.stdout.splitlines()


@pytest.mark.django_db
def test_the_upload_views_take_ten_photos_of_ten_megabytes(creator, settings):
    client = Client()
    client.force_login(creator)
    assert UPLOAD_BODY_LIMITS.get("batch_new") >= 10 * 10 * 1024 * 1024 > settings.REQUEST_MAX_BYTES
    assert UPLOAD_BODY_LIMITS.get("create_edit") >= 10 * 1024 * 1024
    # Only the announced size is looked at: the gate answers before Django parses anything.
    big = {"CONTENT_LENGTH": str(settings.REQUEST_MAX_BYTES + 1), "CONTENT_TYPE": "application/x-www-form-urlencoded"}
    assert client.generic("POST", "/profile/", b"", **big).status_code == 413
    assert client.generic("POST", "/webhooks/stripe/", b"", **big).status_code == 413
