"""The container image works: the Dockerfile builds here, and the site runs from the
image's own filesystem as its containers would (tests/deploy/image.py says how, on a machine
without a container daemon). With production settings pointing at PostgreSQL, Redis, an S3 API
and an SMTP server on loopback: `release` migrates, `web` and `worker` start, `/readyz` is all
green, the image's own health check passes, a person signs up, makes a picture that the worker
finishes and downloads it from the bucket, and /healthz keeps answering within a second while
100 slow clients hold connections to the web process. Figures (build time, size, time to a
served page) are printed with `-s` and kept in docs/deployment.md."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.deploy import journey
from tests.deploy.image import base_image, build_image, mounted
from tests.procfile import free_port, wait_for_healthz
from tests.slowclients import probe_while_slow


@pytest.fixture(scope="module")
def built():
    if os.geteuid() != 0:
        pytest.fail(
            "the image test needs root (debootstrap, chroot, podman's storage): run make test as root, as CI does"
        )
    started = time.monotonic()
    base = base_image()
    base_seconds = time.monotonic() - started
    build = build_image(base)
    print(f"\nimage: base {base_seconds:.0f} s, build {build.seconds:.0f} s, {build.size_mb:.0f} MB "
          f"({build.size_mb - build.base_size_mb:.0f} MB over the {build.base_size_mb:.0f} MB base)")  # fmt: skip
    return build


def test_the_image_is_built_as_the_issue_asks(built):
    config = built.config
    assert config["User"] == "dreampixel"  # not root
    assert config["Entrypoint"] == ["/app/deploy/run"] and config["Cmd"] == ["web"]
    assert "DREAMPIXEL_ENV=production" in config["Env"]
    assert config["Healthcheck"]["Test"][:1] == ["CMD"]
    with mounted(built.image, config) as image:
        assert (image.root / "app" / "staticfiles" / "staticfiles.json").is_file()  # collected at build
        assert not (image.root / "app" / ".env").exists()
        assert not (image.root / "app" / "requirements-dev.txt").exists()
        installed = {
            p.name.split("-")[0].lower()
            for p in (image.root / "opt/venv/lib/python3.11/site-packages").glob("*.dist-info")
        }
        assert "django" in installed and "gunicorn" in installed
        assert not installed & {"honcho", "pytest", "moto", "playwright"}  # the runtime lock only


def test_the_site_runs_from_the_image(built, production_env, mailbox):
    port = free_port()
    env = {**production_env, "PORT": str(port)}
    with mounted(built.image, built.config) as image:
        started = time.monotonic()
        release = subprocess.run(image.command(["release"], env), capture_output=True, text=True, timeout=300)
        assert release.returncode == 0, release.stdout[-2000:] + release.stderr[-3000:]
        release_seconds = time.monotonic() - started

        processes = {
            role: subprocess.Popen(
                image.command([role], env), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            for role in ("web", "worker")
        }
        try:
            assert wait_for_healthz(port, 60, processes["web"]), _stderr(processes["web"])
            served_seconds = time.monotonic() - started
            print(f"\nfrom release to a served page: {served_seconds:.1f} s (release {release_seconds:.1f} s)")

            browser = journey.Browser(f"http://127.0.0.1:{port}")
            ready = browser.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert set(json.loads(ready.text)["checks"]) == {"database", "static_files"}
            # Monitoring's deep check reaches Redis, the queue and the bucket from the image too.
            deep = httpx.get(
                f"http://127.0.0.1:{port}/readyz/deep", headers={"Authorization": f"Bearer {env['METRICS_TOKEN']}"}
            )
            assert deep.status_code == 200, deep.text
            assert set(json.loads(deep.text)["checks"]) >= {"database", "static_files", "cache", "queue", "storage"}
            health = subprocess.run(
                image.command(["python", "/app/deploy/healthcheck.py", "web"], env), capture_output=True, timeout=30
            )
            assert health.returncode == 0, health.stderr

            assert browser.get("/").status_code == 200
            assert browser.get("/accounts/login/").status_code == 200
            journey.sign_up_and_confirm(browser, mailbox, journey.new_address("image"))
            assert browser.get("/create/").status_code == 200
            page = journey.wait_until_finished(browser, journey.create_picture(browser, "a red kite over the dunes"))
            assert 'data-status="succeeded"' in page, _stderr(processes["worker"])
            assert len(journey.fetch_output(browser, page)) > 1000
            browser.close()

            answers, still_open = probe_while_slow(port, slow=100)
            assert still_open == 100
            assert None not in answers, answers
        finally:
            for process in processes.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            stopped = time.monotonic()
            for role, process in processes.items():
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    pytest.fail(f"{role} did not stop within 40 s of SIGTERM")
            print(f"stopped in {time.monotonic() - stopped:.1f} s")
            if sys.exc_info()[0] is not None:  # a step failed: what each process said, in the report
                for role, process in processes.items():
                    print(f"--- {role}'s log (last 4,000 characters)\n{_stderr(process)}")


def _stderr(process: subprocess.Popen) -> str:
    if process.poll() is None:
        return "(still running)"
    return process.stderr.read().decode(errors="replace")[-4000:] if process.stderr else ""
