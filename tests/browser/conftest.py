"""Playwright for Python driving Debian's Chromium headless shell against pytest-django's live
server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from generation.tests import factories

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Debian's chromium-headless-shell (scripts/ensure-chromium.sh): the headless shell Playwright runs
# by default, lighter than the full browser's headless mode.
CHROMIUM = "chromium-headless-shell"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope: the flag below must not outlive the browser tests that need it.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which(CHROMIUM)
    if executable is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (apt-get install {CHROMIUM}).")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # alongside it are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(autouse=True)
def _own_catalog(request):
    # Each browser test offers only the models it makes, so the page shows one of each button:
    # the seeded catalog steps aside.
    if "live_server" in request.fixturenames:
        from generation.models import AIModel

        request.getfixturevalue("transactional_db")
        AIModel.objects.all().delete()


@pytest.fixture(autouse=True)
def _pictures_at_their_own_size(monkeypatch):
    # Pages here are looked at, and become the docs' screenshots: the preview renderer's own
    # sizes, not the small pictures the other tests draw (generation/tests/factories.py).
    monkeypatch.setattr(factories, "SMALL_PICTURES", {})


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    # A Content-Security-Policy violation or a broken script shows up as a console error.
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"{message.text} at {message.location.get('url')}"),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert not problems, problems


def screenshot(page, name: str) -> Path | None:
    """Write docs/screenshots/<name>.png only when asked (SCREENSHOTS=1, `make screenshots`):
    a test run must not rewrite tracked files. The page is still rendered to an image either
    way, so a page that cannot be captured fails the test in every run."""
    # From the top: a page scrolled by a click would show its sticky header in mid-picture.
    page.evaluate("window.scrollTo(0, 0)")
    image = page.screenshot(full_page=True)
    if os.environ.get("SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(image)
    return path


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (axe-playwright-python
    ships axe.min.js itself: nothing is downloaded)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(
            node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
            for node in violation["nodes"][:3]
        )
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def staff_sign_in(page, staff_user) -> None:
    """Sign in to the back office with the password and the authenticator's code; lands on the
    admin home. A code is good for its 30-second step only: with little of the step left, the
    next step's code is waited for, so a slow submit cannot carry a code past its step."""
    from accounts.tests.totp import authenticator_code

    page.goto("/admin/")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=login]", staff_user.email)
    page.fill("input[name=password]", "x-staff-password-1")
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.fill("input[name=code]", authenticator_code(staff_user.totp_secret, margin=10))
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/admin/")


def sign_in(page, user) -> None:
    """Sign in on the login form with the factories' password; lands on the create page."""
    from accounts.tests.factories import PASSWORD

    page.goto("/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/create/")
