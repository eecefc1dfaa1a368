"""The Procfile's web process seen from outside: /metrics adds up every gunicorn worker, and its
log is JSON lines an operator can follow by the request id a person reports."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from generation.services import batch_create, job_run
from generation.tests.factories import local_edit_model
from generation.tests.photos import photo_bytes
from generation.tests.test_qcluster import ROOT, database_url
from generation.uploads import image_validate
from tests.clusters import free_port, start, stop
from tests.monitor import FakeMonitor

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "a-monitoring-token-of-at-least-32-chars"
WORKERS = 3


@pytest.fixture
def web(tmp_path, settings):
    """`web:` of the Procfile, run as a platform runs it: through the shell, with $PORT."""
    command = next(line.removeprefix("web:").strip() for line in (ROOT / "Procfile").read_text().splitlines()
                   if line.startswith("web:"))  # fmt: skip
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WORKERS),
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
        "METRICS_ALLOWED_NETWORKS": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    yield base, log
    stop(process, timeout=10)


def lines(log: Path) -> list[dict]:
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line that is not JSON: {line!r}") from None
    return found


def get(base: str, path: str, **kwargs) -> httpx.Response:
    # A new connection per request, so each goes to whichever worker accepts it first.
    return httpx.get(base + path, headers={"Host": "localhost", **kwargs.pop("headers", {})}, timeout=30, **kwargs)


def scrape(base: str) -> dict:
    text = get(base, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_add_up_every_gunicorn_worker_s_requests(web):
    base, log = web
    for _ in range(30):
        assert get(base, "/terms/").status_code == 200
    time.sleep(0.5)  # the access lines of the last requests
    served_by = {line["pid"] for line in lines(log) if line.get("path") == "/terms/"}
    assert len(served_by) >= 2, "every request went to one worker: the test proves nothing"
    key = ("dreampixel_http_request_duration_seconds_count", (("status", "200"), ("view", "terms")))
    # Whichever worker answers the scrape, it counts every worker's requests.
    assert [scrape(base)[key] for _ in range(6)] == [30.0] * 6


def test_the_access_log_and_the_application_s_lines_share_the_request_id_returned_to_the_client(web):
    base, log = web
    response = get(base, "/no-such-page/")
    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 404 and len(request_id) == 32
    kept = get(base, "/healthz", headers={"X-Request-ID": "lb-trace-12345678"})
    assert kept.headers["X-Request-ID"] == "lb-trace-12345678"  # the load balancer's id, kept
    time.sleep(0.5)
    mine = [line for line in lines(log) if line.get("request_id") == request_id]
    access = [line for line in mine if line["logger"] == "gunicorn.access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [("GET", "/no-such-page/", 404)]
    assert {"time", "level", "message", "duration_ms", "bytes", "remote_addr", "user_agent"} <= set(access[0])
    assert [line["message"] for line in mine if line["logger"] == "django.request"] == ["Not Found: /no-such-page/"]
    assert any(line["logger"] == "gunicorn.access" and line["request_id"] == "lb-trace-12345678" for line in lines(log))


def test_an_error_that_escapes_django_is_logged_as_json_with_its_request_id(web, creator):
    base, log = web
    # A batch zip streams each file as it reads it: a file missing from storage breaks the stream
    # after Django has answered and the first photo was sent, where only gunicorn sees the error.
    photos = [
        image_validate(SimpleUploadedFile(f"p{n}.png", photo_bytes("PNG", size=(40, 30), colour=(20 * n, 50, 90))))
        for n in range(2)
    ]
    batch = batch_create(user=creator, model=local_edit_model(), prompt="Warmer light", photos=photos)
    first, second = batch.jobs.order_by("created_at")
    for job in (first, second):
        job_run(job_id=job.pk)
    default_storage.delete(second.outputs.get().file.name)
    client = Client()
    client.force_login(creator)  # the session is written through to the database, where gunicorn reads it
    cookies = {"sessionid": client.cookies["sessionid"].value}

    browser = httpx.Client(cookies=cookies, headers={"Host": "localhost"}, timeout=30)
    with browser, browser.stream("GET", f"{base}/batches/{batch.pk}/download/") as response:
        assert response.status_code == 200
        request_id = response.headers["X-Request-ID"]
        with pytest.raises(httpx.HTTPError):
            response.read()  # the body stops halfway
    time.sleep(0.5)
    errors = [line for line in lines(log) if line["logger"] == "gunicorn.error" and line["level"] == "ERROR"]
    assert errors, log.read_text()[-3000:]
    assert errors[-1]["request_id"] == request_id
    assert "FileNotFoundError" in errors[-1]["exc_info"]


def test_a_running_cluster_s_scheduler_pings_the_heartbeat_url(tmp_path, settings):
    # The dead-man's switch from the side that can stop: the workers' own scheduler.
    call_command("install_schedules", stdout=io.StringIO())
    with FakeMonitor() as monitor:
        env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
               "HEARTBEAT_URL": f"{monitor.url}/ping/dreampixel"}  # fmt: skip
        env.pop("REDIS_URL", None)
        cluster = start(["qcluster"], env, tmp_path / "qcluster.log")
        try:
            deadline = time.monotonic() + 90  # django-q2's scheduler looks every 30 seconds
            while not monitor.pings:
                alive = cluster.poll() is None and time.monotonic() < deadline
                assert alive, (tmp_path / "qcluster.log").read_text()[-3000:]
                time.sleep(0.5)
        finally:
            stop(cluster)
    assert monitor.pings[0] == "/ping/dreampixel"
