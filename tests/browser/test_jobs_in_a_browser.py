from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.tests.factories import local_model
from tests.browser.conftest import screenshot, sign_in
from tests.concurrency import jobs_start_in_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_watch_the_job_finish_live_and_find_it_in_the_gallery(page):
    user = UserFactory(name="Pixel Fan")
    credits_grant(user=user, amount=3_000, key=f"signup:{user.pk}", kind="signup_bonus")
    local_model()
    sign_in(page, user)

    page.goto("/create/")
    assert page.locator("header .balance-amount").inner_text() == "3,000"
    page.fill("textarea[name=prompt]", "A paper boat on a rainy street, neon reflections")
    page.check("input[name=aspect_ratio][value=landscape]")
    screenshot(page, "create")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/jobs/*/")
    assert page.locator(".status-pill").inner_text() == "Queued"
    assert page.locator("header .balance-amount").inner_text() == "2,500"

    # A worker picks the job up while the page is open: the page updates without a reload.
    job = Job.objects.get(user=user)

    (thread,) = jobs_start_in_threads([job])
    page.wait_for_selector(".status-succeeded .output img", timeout=15_000)
    thread.join(timeout=15)
    assert page.locator(".status-pill").inner_text() == "Succeeded"
    natural_width = page.eval_on_selector(".output img", "img => img.naturalWidth")
    assert natural_width == 864
    screenshot(page, "job")

    page.goto("/gallery/")
    assert page.locator(".gallery-grid li").count() == 1
    page.wait_for_function("document.querySelector('.gallery-grid img').naturalWidth > 0")
    screenshot(page, "gallery")
    assert balance_of(user) == 2_500
