"""In Chromium at 1280 and 390 px, light and dark: help with the prompt, shapes from the
catalog, a gallery to work in, and the bugs a demanding new user found on the walk."""

from __future__ import annotations

import zipfile

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.services import job_create, job_run
from generation.tests.factories import AIModelFactory, local_edit_model, local_model
from tests.browser.conftest import accessibility_problems, screenshot, sign_in
from tests.concurrency import jobs_start_in_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
SHAPES = {"portrait": "2:3", "square": "1:1", "landscape": "3:2", "wide": "16:9", "tall": "9:16",
          "portrait_4_5": "4:5", "portrait_3_4": "3:4"}  # fmt: skip


def _creator(credits: int = 10_000):
    user = UserFactory.create(name="Pixel Fan")
    credits_grant(user=user, amount=credits, key=f"signup:{user.pk}", kind="signup_bonus")
    return user


def _catalog():
    # The preview renderer offers every shape and takes a negative prompt; a second model offers
    # three shapes and takes none, so switching models changes what the form offers.
    preview = local_model(aspect_ratios=SHAPES, negative_prompt_input="negative_prompt")
    narrow = AIModelFactory(key="narrow", name="Square and portrait", position=5,
                            aspect_ratios={"square": "1:1", "portrait": "2:3", "portrait_4_5": "4:5"})  # fmt: skip
    return preview, narrow


def _context(browser, live_server, viewport, scheme="light"):
    return browser.new_context(base_url=live_server.url, viewport=viewport, color_scheme=scheme)


def test_the_create_form_helps_with_the_prompt_offers_the_model_s_shapes_and_submits_with_ctrl_enter(page):
    user = _creator()
    preview, narrow = _catalog()
    sign_in(page, user)
    page.goto("/create/")

    # Ideas on an empty page: an example fills the prompt in place; Surprise me draws another.
    page.click("[data-example] >> nth=0")
    expect(page.locator("textarea[name=prompt]")).to_have_value("A lighthouse on a cliff in a storm, oil painting")
    assert page.url.endswith("/create/")  # filled here, no reload
    page.click("text=Surprise me")
    surprise = page.input_value("textarea[name=prompt]")
    assert surprise and surprise != "A lighthouse on a cliff in a storm, oil painting"

    # The shapes are the chosen model's, with its own values; so is the negative prompt.
    page.click("text=More options")
    shapes = page.locator("[data-ratios] label:visible")
    expect(shapes).to_have_count(7)
    expect(page.locator("label.ratio-wide")).to_contain_text("16:9")
    expect(page.locator("textarea[name=negative_prompt]")).to_be_visible()
    page.check(f"input[name=model][value='{narrow.pk}']")
    expect(shapes).to_have_count(3)
    expect(page.locator("label.ratio-wide")).to_be_hidden()
    expect(page.locator("textarea[name=negative_prompt]")).to_be_hidden()
    page.check(f"input[name=model][value='{preview.pk}']")
    expect(shapes).to_have_count(7)

    # An image style preset, a wide shape, a negative prompt; Ctrl+Enter sends it.
    page.check("input[name=style][value=watercolor]")
    page.check("input[name=aspect_ratio][value=wide]")
    page.fill("textarea[name=negative_prompt]", "text, people")
    page.fill("textarea[name=prompt]", "A harbour at dawn")
    page.focus("textarea[name=prompt]")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/jobs/*/")
    job = Job.objects.get(user=user)
    assert (job.aspect_ratio, job.style, job.negative_prompt) == ("wide", "watercolor", "text, people")
    assert balance_of(user) == 9_500
    (thread,) = jobs_start_in_threads([job])
    page.wait_for_selector(".status-succeeded .output img", timeout=15_000)
    thread.join(timeout=15)
    page.wait_for_function("document.querySelector('.output img').naturalWidth > 0")
    size = page.eval_on_selector(".output img", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [896, 504]
    expect(page.locator(".job-facts")).to_contain_text("Wide 16:9")
    expect(page.locator(".job-facts")).to_contain_text("Watercolour")
    expect(page.locator(".job-facts")).to_contain_text("text, people")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_create_pages_and_the_gallery_look_right_and_pass_axe_at_both_widths(browser, live_server, scheme):
    user = _creator()
    _catalog()
    local_edit_model(negative_prompt_input="negative_prompt")
    for prompt, shape in (("A fox in the snow", "portrait"), ("A lighthouse in a storm", "wide"),
                          ("A kite over the dunes", "square"), ("A comet over the sea", "tall")):  # fmt: skip
        job_run(job_id=job_create(user=user, model=local_model(), prompt=prompt, aspect_ratio=shape).id)
    problems: list[str] = []
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = _context(browser, live_server, viewport, scheme)
        page = context.new_page()
        sign_in(page, user)
        for url, shot in (("/create/", "create-help"), ("/create/edit/", "create-edit-styles"), ("/gallery/", "gallery-work"),
                          ("/gallery/?q=lighthouse", "gallery-search")):  # fmt: skip
            page.goto(url)
            problems += accessibility_problems(page)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], (url, name)
            # Nothing spills out of its box: every shape's name and value fit its button.
            spilled = page.evaluate(
                "[...document.querySelectorAll('[data-ratios] label, .choice, .chip')]"
                ".filter((box) => box.scrollWidth > box.clientWidth + 1).map((box) => box.textContent.trim())"
            )
            assert not spilled, (url, name, spilled)
            screenshot(page, f"{shot}-{name}-{scheme}")
        context.close()
    assert not problems, "\n".join(problems)


def test_search_favourites_and_many_at_once_in_the_gallery(page):
    user = _creator()
    model = local_model()
    for prompt in ("A fox in the snow", "A lighthouse in a storm", "A lighthouse at dawn", "A kite"):
        job_run(job_id=job_create(user=user, model=model, prompt=prompt, aspect_ratio="square").id)
    sign_in(page, user)
    page.goto("/gallery/")
    expect(page.locator(".gallery-item")).to_have_count(4)

    # Search by prompt.
    page.fill("input[name=q]", "lighthouses")
    page.press("input[name=q]", "Enter")
    expect(page.locator(".gallery-item")).to_have_count(2)
    page.click("text=Clear the search")

    # A favourite, with one click, then the filter.
    fox = page.locator(".gallery-item", has_text="A fox")
    fox.locator(".fav-toggle").click()
    expect(fox.locator(".fav-toggle")).to_have_attribute("aria-pressed", "true")
    page.click(".filters >> text=Favourites")
    expect(page.locator(".gallery-item")).to_have_count(1)
    page.click(".filters >> text=Favourites")  # a toggle: off again
    expect(page.locator(".gallery-item")).to_have_count(4)

    # Choose two: download them as one zip.
    expect(page.locator("[data-needs-selection]").first).to_be_disabled()
    page.locator(".gallery-item", has_text="A kite").locator("input[type=checkbox]").check()
    page.locator(".gallery-item", has_text="at dawn").locator("input[type=checkbox]").check()
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")
    with page.expect_download() as download:
        page.click("text=Download as zip")
    archive = zipfile.ZipFile(download.value.path())
    assert len(archive.namelist()) == 2
    screenshot(page, "gallery-selected")

    # ...and delete them, after saying so.
    page.click("summary:has-text('Delete…')")
    page.click("text=Delete for good")
    expect(page.get_by_text("2 jobs and their files were deleted.")).to_be_visible()
    expect(page.locator(".gallery-item")).to_have_count(2)
    assert Job.objects.filter(user=user, deleted_at__isnull=False).count() == 2

    # Select all picks the page.
    page.click("text=Select all")
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected")


def test_a_waiting_job_fits_a_phone_in_every_shape_and_the_history_reads_without_scrolling(browser, live_server):
    user = _creator(50_000)
    model = local_model(aspect_ratios=SHAPES)
    jobs = {shape: job_create(user=user, model=model, prompt=f"A {shape} kite", aspect_ratio=shape) for shape in SHAPES}
    for job in list(jobs.values())[:2]:
        job_run(job_id=job.id)
    context = _context(browser, live_server, PHONE)
    page = context.new_page()
    sign_in(page, user)
    for shape, job in list(jobs.items())[2:]:
        page.goto(f"/jobs/{job.id}/")
        expect(page.locator(f".placeholder-{shape}")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], shape
        box = page.locator(".placeholder").bounding_box()
        ratio = [int(n) for n in SHAPES[shape].split(":")]
        assert abs(box["width"] / box["height"] - ratio[0] / ratio[1]) < 0.05, (shape, box)
        if shape == "wide":
            screenshot(page, "job-waiting-phone")
    page.goto("/billing/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    first_date = page.locator(".ledger-date time").first
    line = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector('.ledger-date')).lineHeight)"))
    assert first_date.bounding_box()["height"] <= line * 1.2  # one line
    screenshot(page, "billing-phone")
    context.close()


def test_the_header_balance_follows_a_refund_while_the_job_page_is_watched(page):
    user = _creator(3_000)
    job = job_create(user=user, model=local_model(), prompt="A comet [fail]", aspect_ratio="square")
    sign_in(page, user)
    page.goto(f"/jobs/{job.id}/")
    expect(page.locator("#header-balance")).to_have_text("2,500")
    (thread,) = jobs_start_in_threads([job])
    page.wait_for_selector(".status-failed", timeout=15_000)
    thread.join(timeout=15)
    expect(page.locator("#header-balance")).to_have_text("3,000")
    assert balance_of(user) == 3_000


def test_a_batch_with_a_text_file_counts_and_pictures_only_the_photos(page, tmp_path):
    from generation.tests.photos import photo_bytes

    user = _creator()
    local_edit_model()
    files = []
    for n in range(3):
        path = tmp_path / f"photo{n}.jpg"
        path.write_bytes(photo_bytes("JPEG", size=(64, 48), colour=(40 * n, 90, 160)))
        files.append(str(path))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    sign_in(page, user)
    page.goto("/batches/new/")
    page.set_input_files("input[name=photos]", [*files, str(notes)])
    expect(page.locator(".cost-line")).to_contain_text("3 photos × 1,000 = 3,000 credits.")
    expect(page.locator(".thumbs li img")).to_have_count(3)
    expect(page.locator(".thumbs li.is-rejected")).to_contain_text("notes.txt: not a photo")
    for image in page.locator(".thumbs li img").all():
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    screenshot(page, "batch-with-a-text-file")


def test_new_variation_short_of_credits_offers_to_buy_more(page):
    user = _creator(500)
    job = job_create(user=user, model=local_model(), prompt="A fox", aspect_ratio="square")
    job_run(job_id=job.id)
    sign_in(page, user)
    page.goto(f"/jobs/{job.id}/")
    page.click("button:has-text('New variation')")
    message = page.locator(".messages .message-error")
    expect(message).to_contain_text("enough credits")
    message.get_by_role("link", name="Buy more credits").click()
    page.wait_for_url("**/billing/")
