"""The back office in Chromium: the pages staff review reports on, with pictures, axe-clean."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from generation.tests.factories import local_edit_model, local_model
from tests.browser.conftest import accessibility_problems, screenshot, staff_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _a_reported_edit(creator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from generation.services import job_create, job_report, job_run
    from generation.tests.photos import photo_bytes
    from generation.uploads import image_validate

    photo = image_validate(SimpleUploadedFile("p.jpg", photo_bytes("JPEG", size=(480, 360), colour=(40, 90, 160))))
    job = job_create(user=creator, model=local_edit_model(), prompt="Golden hour light", aspect_ratio="original",
                     photo=photo)  # fmt: skip
    job_run(job_id=job.id)
    job.refresh_from_db()
    report = job_report(user=creator, job=job, reason="The sky came out green.")
    image = job_create(user=creator, model=local_model(), prompt="A lighthouse [fail]", aspect_ratio="square")
    job_run(job_id=image.id)
    return job, report


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_staff_review_a_report_with_its_pictures_on_pages_that_pass_axe(
    browser, live_server, staff_user, creator, scheme
):
    from django.core.management import call_command

    from accounts.models import StaffAction
    from generation.models import JobReport

    job, report = _a_reported_edit(creator)
    report = JobReport.objects.get(job=job)
    call_command("reconcile")
    context = browser.new_context(
        base_url=live_server.url, color_scheme=scheme, viewport={"width": 1280, "height": 860}
    )
    page = context.new_page()
    staff_sign_in(page, staff_user)
    problems: list[str] = []
    problems += accessibility_problems(page)

    # The report: the result and the photo it edited, side by side, without opening file links.
    page.goto(f"/admin/generation/jobreport/{report.pk}/change/")
    expect(page.locator(".dp-preview img")).to_have_count(2)
    for image in page.locator(".dp-preview img").all():
        page.wait_for_function("img => img.complete", arg=image.element_handle())  # loaded, or failed to
        assert image.evaluate("img => img.naturalWidth > 0"), image.get_attribute("src")
    problems += accessibility_problems(page)
    screenshot(page, f"admin-report-{scheme}")

    # The job: pictures too, no "View on site" (a job page is its owner's), and it fits the window.
    page.goto(f"/admin/generation/job/{job.pk}/change/")
    expect(page.locator(".dp-preview img").first).to_be_visible()
    assert page.get_by_text("View on site").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    problems += accessibility_problems(page)
    screenshot(page, f"admin-job-{scheme}")

    # The jobs list shows every column, the error last, without scrolling sideways.
    page.goto("/admin/generation/job/")
    expect(page.locator("#result_list thead th").last).to_contain_text("Error")
    table = page.locator("#result_list").bounding_box()
    shown = page.locator("#changelist .results").bounding_box()
    assert table["x"] + table["width"] <= shown["x"] + shown["width"] + 1, (table, shown)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    problems += accessibility_problems(page)
    screenshot(page, f"admin-jobs-{scheme}")

    # The user and the staff trail.
    page.goto(f"/admin/accounts/user/{creator.pk}/change/")
    problems += accessibility_problems(page)
    page.goto("/admin/accounts/staffaction/")
    problems += accessibility_problems(page)

    # The home page's sections each have a name of their own.
    page.goto("/admin/")
    captions = [text.strip().lower() for text in page.locator(".app-list caption, .module caption").all_inner_texts()]
    assert len(captions) == len(set(captions)), captions
    assert StaffAction.objects.count() >= 0
    context.close()
    assert not problems, "\n".join(problems)


def test_the_job_admin_fits_a_phone(browser, live_server, staff_user, creator):
    job, _ = _a_reported_edit(creator)
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    staff_sign_in(page, staff_user)
    page.goto(f"/admin/generation/job/{job.pk}/change/")
    expect(page.locator(".dp-preview img").first).to_be_visible()
    screenshot(page, "admin-job-phone")
    context.close()
