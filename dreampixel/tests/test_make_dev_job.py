"""`make dev` on its embedded defaults makes pictures: SQLite, no REDIS_URL (so the ORM broker and
local-memory cache), local files and the preview renderer. The demo account signs in through the
real sign-in page, asks for a picture on the create page, and sees the job finish with a result."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.deploy.journey import Browser, create_picture, fetch_output, wait_until_finished
from tests.procfile import dev_env_file, stop_group

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_site(url: str, make: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert make.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise AssertionError(f"make dev did not serve {url} within {seconds} s:\n" + log.read_text()[-3000:])


def _environment_of(command: str, *, marker: str) -> dict[str, str]:
    """The environment of the running process whose command line names `command` and whose
    environment holds `marker` (this test's own database)."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and command in (proc / "cmdline").read_text():
                pairs = (item.split("=", 1) for item in (proc / "environ").read_text().split("\0") if "=" in item)
                environment = dict(pairs)
                if any(marker in value for value in environment.values()):
                    return environment
    raise AssertionError(f"no running {command} with {marker}")


def test_on_make_dev_s_defaults_a_signed_in_person_s_picture_is_made(tmp_path):
    from billing.management.commands.demo_account import DEMO_EMAIL, DEMO_PASSWORD

    env_file, database, port = dev_env_file(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PORT")}
    log = tmp_path / "make-dev.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "dev", f"ENV_FILE={env_file}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    browser = Browser(base)
    # Plain HTTP on this machine, as the person's browser sees it.
    del browser.client.headers["X-Forwarded-Proto"]
    browser.client.headers.update({"Origin": base, "Referer": f"{base}/"})
    try:
        _wait_for_site(f"{base}/", make, log, seconds=180)
        signed_in = browser.post_form("/accounts/login/", {"login": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert signed_in.status_code == 302, signed_in.text[:2000]

        job_page = create_picture(browser, "A lighthouse at dusk, made on make dev's defaults")
        page = wait_until_finished(browser, job_page, seconds=120)
        assert 'data-status="succeeded"' in page, page[:3000]
        picture = fetch_output(browser, page)
        assert picture[:8] == b"\x89PNG\r\n\x1a\n" or picture[:3] == b"\xff\xd8\xff" or picture[8:12] == b"WEBP"
        # A link the worker makes (an email's, with no request to take the address from) points
        # at the web's port, although honcho gave the worker a PORT of its own.
        worker_env = _environment_of("supervise_qcluster", marker=f"sqlite:///{database}")
        link = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", "from core.links import absolute_url; print(absolute_url('/gallery/'))"],
            cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert link.stdout.split()[-1] == f"http://127.0.0.1:{port}/gallery/", link.stdout + link.stderr[-2000:]
    finally:
        browser.close()
        stop_group(make, 30)
    # The job is in the SQLite file, run by the worker's cluster, which records its tasks there too.
    with contextlib.closing(sqlite3.connect(database)) as db:
        jobs = db.execute("SELECT status FROM generation_job WHERE prompt LIKE 'A lighthouse at dusk%'").fetchall()
        ran = db.execute(
            "SELECT count(*) FROM django_q_task WHERE func = 'generation.tasks.run_job' AND success"
        ).fetchone()
    assert jobs == [("succeeded",)]
    assert ran[0] >= 1
