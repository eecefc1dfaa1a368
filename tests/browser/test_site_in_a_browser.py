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


def _showcase() -> None:
    # Real results on the landing page: staff featured two shared ones, an image and an edit.
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.tests.factories import UserFactory
    from billing.models import CreditPack
    from billing.services import credits_grant
    from generation.models import ShowcaseItem
    from generation.services import job_create, job_run, job_share
    from generation.tests.factories import AIModelFactory, local_model
    from generation.tests.photos import photo_bytes
    from generation.uploads import image_validate

    CreditPack.objects.get_or_create(name="Starter", defaults={"credits": 5_000, "price_cents": 500, "currency": "usd"})
    owner = UserFactory.create()
    credits_grant(user=owner, amount=10_000, key=f"signup:{owner.pk}", kind="signup_bonus")
    editor = AIModelFactory(
        key="local-edit",
        name="Preview editor",
        kind="image_edit",
        aspect_ratios={"original": "original"},
        credit_cost=1_000,
    )
    photo = image_validate(SimpleUploadedFile("p.jpg", photo_bytes("JPEG", size=(640, 640), colour=(40, 90, 160))))
    jobs = [
        job_create(
            user=owner,
            model=local_model(),
            prompt="A lighthouse in a storm, oil painting",
            aspect_ratio="square",
            seed=3,
        ),
        job_create(user=owner, model=editor, prompt="Golden hour light", aspect_ratio="original", photo=photo, seed=5),
        job_create(
            user=owner,
            model=local_model(),
            prompt="A paper boat on a rainy street, neon",
            aspect_ratio="square",
            seed=8,
        ),
    ]
    for position, job in enumerate(jobs):
        job_run(job_id=job.id)
        job.refresh_from_db()
        job_share(job=job)
        ShowcaseItem.objects.create(job=job, position=position)


def test_landing_page_looks_finished_in_light_and_dark(page, browser, live_server):
    from generation.tests.factories import AIModelFactory

    # The pricing cards show the catalog's prices: one model of each offering.
    for key, kind, seconds, cost in [("b-image", "image", None, 500), ("b-edit", "image_edit", None, 1_000),
                                     ("b-video-3", "video", 3, 2_000), ("b-video-5", "video", 5, 3_000),
                                     ("b-animate-3", "animate", 3, 2_000)]:  # fmt: skip
        AIModelFactory(key=key, kind=kind, duration_seconds=seconds, credit_cost=cost)
    AIModelFactory(key="b-upscale-2", kind="upscale", upscale_factor=2, credit_cost=200)
    _showcase()
    page.goto("/")
    expect(page.locator(".showcase-item")).to_have_count(3)
    expect(page.locator(".showcase-item .compare")).to_have_count(1)
    expect(page.locator(".price-card").first).to_contain_text("about $0.50")
    page.wait_for_function(
        "[...document.querySelectorAll('.showcase img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(page.get_by_role("heading", name="Describe it. Dream Pixel makes it.")).to_be_visible()
    assert page.locator("#pricing .price-card").count() == 6
    _visible_stylesheet_applied(page)
    screenshot(page, "landing")

    dark = browser.new_context(base_url=live_server.url, color_scheme="dark", viewport={"width": 1280, "height": 860})
    dark_page = dark.new_page()
    dark_page.goto("/")
    dark_page.wait_for_function(
        "[...document.querySelectorAll('.showcase img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    body_bg = dark_page.eval_on_selector("body", "el => getComputedStyle(el).backgroundColor")
    assert body_bg == "rgb(15, 14, 23)"
    screenshot(dark_page, "landing-dark")
    dark.close()


def test_landing_page_fits_a_phone(browser, live_server):
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = phone.new_page()
    _showcase()
    page.goto("/")
    page.wait_for_function(
        "[...document.querySelectorAll('.showcase img')].every(img => img.complete && img.naturalWidth > 0)"
    )
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
