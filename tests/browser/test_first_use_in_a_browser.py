"""In Chromium: what a new person sees, on a desktop and a phone, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from billing.services import credits_grant
from generation.services import job_create, job_run, job_share
from generation.tests.factories import local_edit_model, local_model
from generation.tests.photos import photo_bytes
from tests.browser.conftest import accessibility_problems, screenshot, sign_in
from tests.concurrency import jobs_start_in_threads

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _creator(credits: int = 3_000, **fields):
    user = UserFactory.create(name="Pixel Fan", **fields)
    credits_grant(user=user, amount=credits, key=f"signup:{user.pk}", kind="signup_bonus")
    return user


def test_a_job_that_finishes_while_watched_brings_its_actions_and_says_so_in_the_tab(page):
    user = _creator()
    model = local_model()
    sign_in(page, user)
    expect(page.locator(".cost-line")).to_contain_text("enough for 6 images")
    job = job_create(user=user, model=model, prompt="A paper boat, neon reflections", aspect_ratio="portrait")
    page.goto(f"/jobs/{job.id}/")
    # Waiting: a placeholder in the chosen shape, the time so far, and the tab says it too.
    placeholder = page.locator(".placeholder-portrait")
    expect(placeholder).to_be_visible()
    box = placeholder.bounding_box()
    assert box["height"] > box["width"] * 1.3
    page.wait_for_function("document.title.startsWith('⏳')")
    expect(page.locator("[data-elapsed]")).to_contain_text(" s")
    screenshot(page, "job-waiting")

    (thread,) = jobs_start_in_threads([job])
    page.wait_for_selector(".status-succeeded .output img", timeout=15_000)
    thread.join(timeout=15)
    assert page.url.endswith(f"/jobs/{job.id}/")  # no reload
    for action in ("Create a share link", "Delete…", "Report a bad result", "Remix…"):
        expect(page.get_by_text(action, exact=True)).to_be_visible()
    page.wait_for_function("document.title.startsWith('✓')")
    assert page.locator("[data-job-progress]").count() == 0  # the polling stopped
    # Share it: one click copies the link.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("text=Create a share link")
    page.click("text=Copy link")
    expect(page.get_by_text("Link copied.")).to_be_visible()
    link = page.evaluate("navigator.clipboard.readText()")
    assert "/s/" in link and link == page.input_value("#share-link")
    screenshot(page, "job-finished")


def test_polling_waits_while_the_tab_is_hidden_and_resumes_when_it_is_seen(page):
    user = _creator()
    job = job_create(user=user, model=local_model(), prompt="A kite", aspect_ratio="square")
    sign_in(page, user)
    requests: list[str] = []
    page.on("request", lambda request: "/status/" in request.url and requests.append(request.url))
    page.goto(f"/jobs/{job.id}/")
    page.wait_for_timeout(1_500)
    assert requests  # polling every second at first
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(1_200)
    count = len(requests)
    page.wait_for_timeout(2_500)
    assert len(requests) == count  # nothing while hidden
    job_run(job_id=job.id)
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_selector(".status-succeeded .output img", timeout=5_000)


def test_a_job_that_finishes_in_a_background_tab_raises_a_notification_when_allowed(page):
    user = _creator()
    job = job_create(user=user, model=local_model(), prompt="A kite", aspect_ratio="square")
    # Chromium's own notifications need a desktop: a stand-in records what the page raises.
    page.add_init_script("""
        window.raised = [];
        window.Notification = class { constructor(title, options) { window.raised.push(options.body); }
            addEventListener() {} close() {} static requestPermission() { return Promise.resolve('granted'); } };
        window.Notification.permission = 'granted';
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.tabHidden === true});
    """)
    sign_in(page, user)
    page.goto(f"/jobs/{job.id}/")
    page.evaluate("window.tabHidden = true")
    (thread,) = jobs_start_in_threads([job])
    page.wait_for_function("window.raised.length === 1", timeout=15_000)
    thread.join(timeout=15)
    assert page.evaluate("window.raised") == ["Your image is ready."]


def _photo_files(folder, count: int) -> list[str]:
    """Small JPEGs of different colours on disk, for the file inputs."""
    paths = []
    for n in range(count):
        path = folder / f"photo{n}.jpg"
        path.write_bytes(photo_bytes("JPEG", size=(64, 48), colour=(20 * n, 90, 160)))
        paths.append(str(path))
    return paths


def test_the_batch_cost_line_reads_cleanly_before_and_after_a_form_error(page, tmp_path):
    user = _creator(10_000)
    local_edit_model()
    photos = _photo_files(tmp_path, 4)
    sign_in(page, user)
    page.goto("/batches/new/")
    line = page.locator(".cost-line")
    expect(line).to_contain_text("Choose photos to see the total. You have 10,000 credits")
    page.set_input_files("input[name=photos]", photos)
    expect(line).to_contain_text("4 photos × 1,000 = 4,000 credits. You have 10,000 credits")
    assert "Choose photos" not in line.inner_text()
    # A server-side error (no prompt) shows the page again: the sentence appears once.
    page.click("button:has-text('Edit the photos')")
    page.wait_for_load_state()
    expect(page.locator(".field-error").first).to_be_visible()
    assert line.inner_text().count("to see the total") <= 1
    assert "4,000 credits" in line.inner_text() or "Choose photos to see the total." in line.inner_text()


def test_the_profile_and_the_signed_in_header_fit_a_phone(browser, live_server):
    user = _creator(email="a.rather.long.address.for.a.small.phone@example.com")
    local_model()
    phone = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = phone.new_page()
    sign_in(page, user)
    problems: list[str] = []
    for url in ("/profile/", "/create/", "/billing/", "/gallery/"):
        page.goto(url)
        problems += accessibility_problems(page)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= PHONE["width"], (url, overflow)
        header = page.locator(".site-header").bounding_box()
        assert header["height"] < 80, (url, header)  # one line
    assert not problems, "\n".join(problems)
    page.goto("/profile/")
    page.click("summary:has-text('Menu')")
    expect(page.locator(".nav-menu").get_by_role("link", name="Gallery")).to_be_visible()
    screenshot(page, "phone-menu")
    page.click(".nav-menu >> text=Gallery")
    page.wait_for_url("**/gallery/")
    phone.close()

    # A finished job and the create page on a phone in the dark.
    job = job_create(user=user, model=local_model(), prompt="A lighthouse at dusk", aspect_ratio="landscape")
    job_run(job_id=job.id)
    dark = browser.new_context(base_url=live_server.url, viewport=PHONE, color_scheme="dark")
    page = dark.new_page()
    sign_in(page, user)
    for url, name in ((f"/jobs/{job.id}/", "job-phone-dark"), ("/create/", "create-phone-dark")):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], url
        screenshot(page, name)
    dark.close()


def _pages_of_a_creator(user) -> list[str]:
    model = local_model()
    job = job_create(user=user, model=model, prompt="A lighthouse in a storm", aspect_ratio="landscape")
    job_run(job_id=job.id)
    job.refresh_from_db()
    job_share(job=job)
    job.refresh_from_db()
    return [
        "/create/", "/create/edit/", "/create/video/", "/batches/new/", "/batches/", f"/jobs/{job.id}/",
        "/gallery/", "/billing/", "/profile/", "/profile/delete/", f"/s/{job.share_token}/", "/no-such-page/",
    ]  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_with_no_serious_or_critical_violation(browser, live_server, scheme):
    user = _creator()
    context = browser.new_context(
        base_url=live_server.url, color_scheme=scheme, viewport={"width": 1280, "height": 860}
    )
    page = context.new_page()
    problems: list[str] = []
    for url in ("/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/terms/", "/privacy/"):
        page.goto(url)
        problems += accessibility_problems(page)
    sign_in(page, user)
    for url in _pages_of_a_creator(user):
        page.goto(url)
        problems += accessibility_problems(page)
        # Every image says what it shows (or is marked decorative with an empty alt).
        assert page.locator("img:not([alt])").count() == 0, url
    context.close()
    assert not problems, "\n".join(problems)


def test_keyboard_focus_is_visible(page):
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    width = page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
    assert outline != "none" and width >= 2


def test_photos_are_checked_before_upload_shown_as_thumbnails_and_kept_after_a_form_error(page, tmp_path):
    user = _creator(10_000)
    local_edit_model()
    photos = _photo_files(tmp_path, 11)
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    sign_in(page, user)
    page.goto("/batches/new/")
    page.fill("textarea[name=prompt]", "Warmer light")

    # Too many, and the wrong type: said at once, and nothing is sent.
    page.set_input_files("input[name=photos]", photos)
    expect(page.locator(".upload-problems")).to_contain_text("A batch takes up to 10 photos; you chose 11.")
    page.set_input_files("input[name=photos]", [photos[0], str(text)])
    expect(page.locator(".upload-problems")).to_contain_text("notes.txt is not a JPEG, PNG or WebP photo.")
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    page.click("button:has-text('Edit the photos')")
    page.wait_for_timeout(800)
    assert posts == []  # a batch with a problem is not sent

    # Dropped photos join the chosen ones, with a thumbnail each; one can be removed again.
    page.set_input_files("input[name=photos]", photos[:2])
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 8;
        return new Promise((done) => canvas.toBlob((blob) => {
            transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
            document.querySelector('.dropzone').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
            done();
        }, 'image/png'));
    }""")
    expect(page.locator(".thumbs li")).to_have_count(3)
    expect(page.locator(".cost-line")).to_contain_text("3 photos × 1,000 = 3,000 credits.")
    screenshot(page, "upload")

    # A server-side error (no prompt): the form comes back with its message, the photos stay.
    page.fill("textarea[name=prompt]", "")
    page.click("button:has-text('Edit the photos')")
    expect(page.locator(".field-error")).to_contain_text("Describe what you want to see.")
    assert page.eval_on_selector("input[name=photos]", "input => input.files.length") == 3
    expect(page.locator(".thumbs li")).to_have_count(3)
    page.fill("textarea[name=prompt]", "Warmer light")
    page.click("button:has-text('Edit the photos')")
    page.wait_for_url("**/batches/*/")
    expect(page.locator(".batch-item")).to_have_count(3)
