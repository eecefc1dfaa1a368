"""Google-only sign-in, deployed: the settings pass the system checks and the release step, and a
whole site (runserver on a database of its own) signs people up through a fake Google on
loopback, while staff still need their second factor."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from accounts.tests.totp import authenticator_code
from fakes.google import FakeGoogle, Identity
from tests.production import production_secrets

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "dreampixel-google-only.apps.googleusercontent.com"
CLIENT_SECRET = "google-only-secret"
GOOGLE_ONLY = {"EMAIL_LOGIN_ENABLED": "false", "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET}
PRODUCTION = {
    "DREAMPIXEL_ENV": "production",
    "SECRET_KEY": "g" * 30 + "-production-secret-with-enough-variety-0123456789",
    "ALLOWED_HOSTS": "dreampixel.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://dreampixel.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_HOST": "smtp.example.com",
    **production_secrets(),
}


def _environment(**extra: str) -> dict[str, str]:
    leave_out = {*PRODUCTION, "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "EMAIL_BACKEND", "DJANGO_SETTINGS_MODULE"}
    return {**{k: v for k, v in os.environ.items() if k not in leave_out}, **GOOGLE_ONLY, **extra}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_environment(**env), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A database of its own, as a new deployment has: the release step migrates it."""
    server = settings.DATABASES["default"]
    name = f"dp_google_only_{uuid.uuid4().hex[:8]}"
    conninfo = dict(host=server["HOST"], port=server["PORT"] or 5432, user=server["USER"], dbname="postgres")
    password = server.get("PASSWORD") or ""
    with psycopg.connect(**conninfo, password=password, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    auth = f"{server['USER']}:{password}@" if password else f"{server['USER']}@"
    yield f"postgres://{auth}{server['HOST']}:{server['PORT'] or 5432}/{name}"
    with psycopg.connect(**conninfo, password=password, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_google_only_settings_pass_the_system_and_deploy_checks():
    checked = manage("check", "--deploy", "--fail-level", "WARNING",
                     **PRODUCTION, DATABASE_URL="postgres://postgres@127.0.0.1:5432/dreampixel")  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, identity=Identity("", "")) as fake:
        yield fake


@pytest.fixture(scope="module")
def site(database_url, google, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The release step, then the site, on Google-only settings."""
    released = manage("migrate", "--noinput", DATABASE_URL=database_url)
    assert released.returncode == 0, released.stdout + released.stderr
    port = _free_port()
    mail = tmp_path_factory.mktemp("google-only-mail")
    env = _environment(
        DATABASE_URL=database_url, FAKE_GOOGLE_URL=google.url, DJANGO_SETTINGS_MODULE="tests.google_only_settings",
        DREAMPIXEL_ENV="development", DEBUG="false", PYTHONPATH=str(ROOT), MAIL_DIR=str(mail),
    )  # fmt: skip
    # Its log to a file: a pipe nobody reads fills up and stalls the server.
    log = tmp_path_factory.mktemp("google-only") / "site.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail("the site did not start: " + log.read_text()[-3000:])
            time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGTERM)
        pytest.fail("the site did not start in time")
    yield f"http://127.0.0.1:{port}", mail
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


def _post_form(browser: httpx.Client, page_url: str, action: str, fields: dict[str, str]) -> httpx.Response:
    browser.get(page_url)
    token = browser.cookies["csrftoken"]
    return browser.post(action, data={"csrfmiddlewaretoken": token, **fields}, headers={"Referer": page_url})


def _sign_in_with_google(browser: httpx.Client, site: str) -> httpx.Response:
    started = _post_form(browser, f"{site}/accounts/login/", f"{site}/accounts/google/login/", {"process": "login"})
    assert started.status_code == 302, started.text[:500]
    # To Google's page, which consents and sends the browser back to the callback.
    return browser.get(started.headers["Location"], follow_redirects=True)


def _sign_in_code(mail: Path) -> str:
    # The newest message's code: allauth mails it on a line of its own.
    newest = max(mail.iterdir(), key=lambda path: path.stat().st_mtime).read_text()
    return re.findall(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", newest, re.MULTILINE)[-1]


def test_a_new_person_signs_up_with_google_and_staff_still_need_their_second_factor(site, google, database_url):
    site, mail = site
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        login_page = browser.get(f"{site}/accounts/login/").text
        assert "Continue with Google" in login_page
        assert "Create an account" not in login_page  # no email sign-up offered
        google.identity = Identity(sub="2001", email="ana@example.com", name="Ana Google")
        landed = _sign_in_with_google(browser, site)
        assert landed.status_code == 200
        assert landed.url.path == "/create/"
        profile = browser.get(f"{site}/profile/")
        assert profile.status_code == 200 and "Ana Google" in profile.text

        # The same person made staff: the back office asks for an authenticator first.
        promoted = manage(
            "shell", "-c",
            "from accounts.models import User; User.objects.filter(email='ana@example.com')"
            ".update(is_staff=True, is_superuser=True)",
            DATABASE_URL=database_url,
        )  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        # Setting up an authenticator first asks who is there: no password, so a code by mail.
        asked = browser.get(f"{site}/admin/", follow_redirects=True)
        assert asked.url.path == "/accounts/reauthenticate/code/"
        sent = _post_form(browser, str(asked.url), str(asked.url), {"recipient": "ana@example.com"})
        confirm = str(httpx.URL(str(asked.url)).join(sent.headers["Location"]))
        confirmed = _post_form(browser, confirm, confirm, {"code": _sign_in_code(mail)})
        assert confirmed.status_code == 302, confirmed.text[-2000:]
        admin = browser.get(f"{site}/admin/", follow_redirects=True)
        assert admin.url.path == "/accounts/2fa/totp/activate/"
        assert browser.get(f"{site}/admin/generation/job/").status_code == 302
        secret = re.search(r'value="([A-Z2-7]{32})"', admin.text)[1]
        code = authenticator_code(secret)
        activated = browser.post(
            f"{site}/accounts/2fa/totp/activate/",
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"], "code": code},
            headers={"Referer": str(admin.url)},
        )
        assert activated.status_code == 302, activated.text[-2000:]
        assert browser.get(f"{site}/admin/").status_code == 200

        # Signing in with Google again, the second factor is asked before anything opens.
        _post_form(browser, f"{site}/profile/", f"{site}/accounts/logout/", {})
        again = _sign_in_with_google(browser, site)
        assert again.url.path == "/accounts/2fa/authenticate/"
        assert browser.get(f"{site}/admin/").status_code == 302
