from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _visible_stylesheet_applied(page) -> None:
    # The hand-written stylesheet loaded: the primary button has its accent background.
    background = page.eval_on_selector(".btn-primary", "el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent", "")


def test_landing_page_looks_finished_in_light_and_dark(page, browser, live_server):
    page.goto("/")
    expect(page.get_by_role("heading", name="Describe it. Dream Pixel makes it.")).to_be_visible()
    assert page.locator("#pricing .price-card").count() == 4
    _visible_stylesheet_applied(page)
    screenshot(page, "landing")

    dark = browser.new_context(base_url=live_server.url, color_scheme="dark", viewport={"width": 1280, "height": 860})
    dark_page = dark.new_page()
    dark_page.goto("/")
    body_bg = dark_page.eval_on_selector("body", "el => getComputedStyle(el).backgroundColor")
    assert body_bg == "rgb(15, 14, 23)"
    screenshot(dark_page, "landing-dark")
    dark.close()


def test_landing_page_fits_a_phone(browser, live_server):
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = phone.new_page()
    page.goto("/")
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow
    screenshot(page, "landing-phone")
    phone.close()


def test_sign_up_verify_profile_sign_out_and_back_in(page):
    page.goto("/accounts/signup/")
    _visible_stylesheet_applied(page)
    screenshot(page, "sign-up")
    page.fill("input[name=email]", "browser@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/confirm-email/")
    assert "Verify Your Email Address" in page.content()

    link = re.search(r"http://[^\s]+/accounts/confirm-email/[^\s]+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.click("button[type=submit]")
    page.wait_for_url("**/create/")
    page.goto("/profile/")
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    page.fill("input[name=name]", "Browser Person")
    page.click("text=Save")
    page.wait_for_selector("text=Your profile was saved.")
    screenshot(page, "profile")

    page.click("header .nav-wide >> text=Sign out")
    page.wait_for_url("**/")
    page.goto("/accounts/login/")
    screenshot(page, "sign-in")
    page.fill("input[name=login]", "browser@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/create/")
    expect(page.locator("header .nav-wide").get_by_text("Browser Person")).to_be_visible()
