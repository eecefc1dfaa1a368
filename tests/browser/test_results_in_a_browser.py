"""In Chromium, at 1280 and 390 pixels, light and dark: four images from one prompt, one held
back and refunded; upscaling one of them, animating another; the shared page saying the result
is made by AI. Every page axe-clean, nothing wider than a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from generation.models import Job, Kind
from generation.services import job_create, job_run, job_share
from generation.tests.factories import local_animator, local_edit_model, local_model, local_upscaler
from tests.browser.conftest import accessibility_problems, screenshot, sign_in
from tests.concurrency import jobs_start_in_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _creator(credits: int = 10_000):
    user = UserFactory.create(name="Pixel Fan")
    credits_grant(user=user, amount=credits, key=f"purchase:{user.pk}")
    return user


def _run_the_newest_job(user) -> Job:
    job = Job.objects.filter(user=user).latest("created_at")
    (thread,) = jobs_start_in_threads([job])
    thread.join(timeout=30)
    return job


def _catalog():
    model = local_model(max_outputs=4)
    local_upscaler(2), local_upscaler(4), local_edit_model(), local_animator(3), local_animator(5)
    return model


def test_four_images_one_held_back_then_upscale_one_and_animate_another(page):
    user = _creator()
    _catalog()
    sign_in(page, user)
    problems: list[str] = []

    # The create page offers up to four and shows what they cost before anything is charged.
    page.goto("/create/")
    page.fill("textarea[name=prompt]", "A lighthouse in a storm, oil painting [fail-one]")
    page.check("input[name=num_outputs][value='4']")
    expect(page.locator("[data-job-total]")).to_have_text("4 images × 500 = 2,000 credits.")
    problems += accessibility_problems(page)
    screenshot(page, "results-1-create-four")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/jobs/*/")
    expect(page.locator(".status-line")).to_contain_text("4 images")
    assert page.locator("header .balance-amount").inner_text() == "8,000"

    # Watched live: three pictures in a grid, the fourth held back and refunded on its own.
    job = _run_the_newest_job(user)
    page.wait_for_selector(".status-succeeded .output-grid .output img", timeout=20_000)
    expect(page.locator(".output-grid .output")).to_have_count(3)
    expect(page.locator(".message-warning")).to_contain_text("1 of 4 images was held back")
    expect(page.get_by_role("button", name="Upscale ×4 · 500").first).to_be_visible()
    page.reload()  # the header's balance includes the refund
    assert page.locator("header .balance-amount").inner_text() == "8,500"
    problems += accessibility_problems(page)
    screenshot(page, "results-2-grid")

    # Upscale the second picture four times: a job of its own, shown beside its picture.
    page.locator("#result-2").get_by_role("button", name="Upscale ×4 · 500").click()
    page.wait_for_url("**/jobs/*/")
    assert page.url != f"{page.url.split('/jobs/')[0]}/jobs/{job.id}/"
    upscale = _run_the_newest_job(user)
    assert upscale.kind == Kind.UPSCALE
    page.wait_for_selector(".status-succeeded [data-compare]", timeout=20_000)
    natural = page.eval_on_selector(".compare-after", "img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [704 * 4, 704 * 4]
    expect(page.locator(".job-facts")).to_contain_text("Made from")
    problems += accessibility_problems(page)
    screenshot(page, "results-3-upscaled")

    # Back on the grid, the picture lists what was made from it; animate the first one.
    page.click(".job-facts a:has-text('Your image')")
    expect(page.locator("#result-2 .made-from")).to_contain_text("Upscale ×4")
    page.locator("#result-1").get_by_role("link", name="Animate…").click()
    expect(page.locator(".source-choice")).to_contain_text("Starting from your image")
    page.locator("label.choice", has_text="Preview animation · 5 s").click()
    page.fill("textarea[name=prompt]", "The waves roll in, the light turns")
    problems += accessibility_problems(page)
    screenshot(page, "results-4-animate-form")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/jobs/*/")
    animation = _run_the_newest_job(user)
    page.wait_for_selector(".status-succeeded video", timeout=30_000)
    duration = page.eval_on_selector(
        "video",
        "v => new Promise(ok => v.readyState ? ok(v.duration) : v.addEventListener('loadedmetadata', () => ok(v.duration)))",
    )
    assert duration == pytest.approx(5, abs=0.2)
    problems += accessibility_problems(page)
    screenshot(page, "results-5-animated")

    assert not problems, "\n".join(problems)
    charged = [entry.amount for entry in LedgerEntry.objects.filter(kind="charge").order_by("pk")]
    assert charged == [-500] * 4 + [-500, -3_000]
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert balance_of(user) == 10_000 - 2_000 + 500 - 500 - 3_000
    assert animation.kind == Kind.ANIMATE


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_grid_its_actions_and_the_shared_page_fit_a_phone(browser, live_server, scheme):
    user = _creator()
    model = _catalog()
    job = job_create(user=user, model=model, prompt="Four kites over a beach", aspect_ratio="portrait", num_outputs=4)
    job_run(job_id=job.id)
    derived = job_create(user=user, model=local_upscaler(2), prompt=job.prompt, aspect_ratio="original",
                         source_output=job.outputs.get(index=0))  # fmt: skip
    job_run(job_id=derived.id)
    job.refresh_from_db()
    token = job_share(job=job)
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, color_scheme=scheme)
    page = context.new_page()
    sign_in(page, user)
    problems: list[str] = []
    for url, name in (
        (f"/jobs/{job.id}/", "results-phone-grid"),
        (f"/jobs/{derived.id}/", "results-phone-upscaled"),
        ("/create/", ""),
        (f"/create/animate/?image={job.outputs.get(index=1).id}", ""),
        ("/gallery/", ""),
        (f"/s/{token}/", "results-phone-shared"),
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        problems += accessibility_problems(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (url, width)
        if name:  # the pages this feature adds; the others' pictures come from their own tests
            screenshot(page, f"{name}-{scheme}")
    page.goto(f"/jobs/{job.id}/")
    # On a phone the grid is one column, every action reachable without zooming.
    boxes = [page.locator(f"#result-{n}").bounding_box() for n in (1, 2)]
    assert boxes[1]["y"] > boxes[0]["y"] + boxes[0]["height"] - 1
    assert page.locator("#result-1 .result-actions .btn").count() >= 5
    page.goto(f"/s/{token}/")
    expect(page.locator(".credentials")).to_contain_text("Made by AI (Preview renderer)")
    expect(page.locator(".shared-grid img")).to_have_count(4)
    context.close()
    assert not problems, "\n".join(problems)
