"""The whole journey in Chromium: a creator from sign-up to a purchase, and a staff member.

A real `qcluster` runs the jobs against the live server's database; payments go through the
fake Stripe's hosted checkout page, which sends the signed webhook and redirects back.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from django.core import mail
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD
from billing.models import LedgerEntry, ReconcileRun
from billing.tests.stripe_kit import WEBHOOK_SECRET
from generation.tests.factories import AIModelFactory, local_model
from generation.tests.photos import photo_bytes
from generation.tests.test_qcluster import ROOT, database_url
from tests.browser.conftest import screenshot, staff_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def checkout(stripe_fake, pack, live_server, settings):
    stripe_fake.checkout_page = True
    stripe_fake.webhook_url = f"{live_server.url}/webhooks/stripe/"
    stripe_fake.webhook_secret = WEBHOOK_SECRET
    # The buy button's redirect goes to the fake's page: allow it as a form target.
    policy = settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
    directives = {**policy["DIRECTIVES"], "form-action": [*policy["DIRECTIVES"]["form-action"], stripe_fake.url]}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {**policy, "DIRECTIVES": directives}
    return stripe_fake


@pytest.fixture
def worker(tmp_path, checkout):
    # The queue's worker reaches the same fake Stripe as the site: the webhook's event is its task.
    env = {
        **os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "Q_WORKERS": "2",
        "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY, "STRIPE_WEBHOOK_SECRET": settings.STRIPE_WEBHOOK_SECRET,
        "STRIPE_API_BASE": checkout.url,
    }  # fmt: skip
    env.pop("REDIS_URL", None)
    log = tmp_path / "qcluster.log"
    with log.open("w") as output:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    cluster.log = log
    yield cluster
    # SIGTERM to the cluster's main process alone, as `docker stop` sends it: the cluster stops its
    # own processes. Sent to all of them at once, it leaves the cluster waiting on its dead sentinel.
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)


def balance(page) -> str:
    return page.locator("header .balance-amount").inner_text()


def test_a_creator_from_sign_up_to_a_purchase(page, worker, checkout, tmp_path):
    local_model()
    AIModelFactory(key="local-edit", name="Preview editor", kind="image_edit", aspect_ratios={"original": "original"},
                   credit_cost=1_000)  # fmt: skip

    # Sign up, verify, and the signup credits arrive.
    page.goto("/accounts/signup/")
    page.fill("input[name=email]", "journey@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/accounts/confirm-email/")
    page.goto(re.search(r"http://[^\s]+/accounts/confirm-email/[^\s]+/", mail.outbox[-1].body).group(0))
    page.click("form.stack button[type=submit]")
    page.wait_for_url("**/create/")
    assert balance(page) == "3,000"
    screenshot(page, "journey-1-signed-up")

    # Create an image and watch it finish without reloading.
    page.goto("/create/")
    page.fill("textarea[name=prompt]", "A lighthouse in a storm, oil painting")
    page.click("button:has-text('Create')")
    page.wait_for_url("**/jobs/*/")
    job_url = page.url
    try:
        page.wait_for_selector(".status-succeeded .output img", timeout=30_000)
    except Exception:
        print(worker.log.read_text()[-3000:])
        raise
    assert page.url == job_url  # no reload, no navigation: htmx swapped the status in
    assert balance(page) == "2,500"  # charged when the job was created, before this page loaded
    screenshot(page, "journey-2-image")

    # Find it in the gallery.
    page.goto("/gallery/")
    assert page.locator(".gallery-grid li").count() == 1
    screenshot(page, "journey-3-gallery")

    # Edit an uploaded photo and compare before and after.
    upload = tmp_path / "street.jpg"
    upload.write_bytes(photo_bytes("JPEG", size=(640, 480), colour=(40, 90, 160)))
    page.goto("/create/edit/")
    page.set_input_files("input[name=photo]", str(upload))
    page.fill("textarea[name=prompt]", "Golden hour light")
    page.click("button:has-text('Create')")
    page.wait_for_selector(".status-succeeded [data-compare]", timeout=30_000)
    page.click("[data-show='100']")
    assert page.eval_on_selector("[data-compare]", "el => el.style.getPropertyValue('--split')") == "100%"
    page.click("[data-show='50']")
    screenshot(page, "journey-4-edit")

    # Buy a pack through Stripe's (fake) hosted page and see the balance rise.
    page.goto("/billing/")
    assert balance(page) == "1,500"
    page.click("button:has-text('Buy Starter')")
    page.wait_for_url(f"{checkout.url}/c/pay/**")
    screenshot(page, "journey-5-checkout")
    page.click("button:has-text('Pay')")
    page.wait_for_url("**/billing/checkout/success/**")
    page.wait_for_selector(".checkout-balance", timeout=15_000)
    assert page.locator(".checkout-balance").inner_text() == "6,500"
    screenshot(page, "journey-6-paid")

    # The history tells the story.
    page.goto("/billing/")
    history = page.locator("table.ledger").inner_text()
    for line in ("Purchase", "Charge", "Signup bonus"):
        assert line in history
    screenshot(page, "journey-7-history")

    # Delete a job.
    page.goto(job_url)
    page.click("summary:has-text('Delete')")
    page.click("button:has-text('Delete for good')")
    page.wait_for_url("**/gallery/")
    assert page.locator(".gallery-grid li").count() == 1  # the edit remains
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1


def _some_work_for_the_charts() -> None:
    # Another person's jobs over the last days, so the admin home's charts have something to draw.
    from datetime import timedelta

    from django.utils import timezone

    from accounts.tests.factories import UserFactory
    from billing.services import credits_grant
    from generation.models import Job
    from generation.services import job_create, job_run

    someone = UserFactory.create()
    credits_grant(user=someone, amount=20_000, key=f"purchase:chart-{someone.pk}")
    for n, prompt in enumerate(["a lighthouse", "a fox", "a comet [fail]", "a harbour", "a kite", "a fern"]):
        job = job_create(user=someone, model=local_model(), prompt=prompt, aspect_ratio="square")
        job_run(job_id=job.id)
        moved = timezone.now() - timedelta(days=n % 4)
        Job.objects.filter(pk=job.pk).update(created_at=moved - timedelta(seconds=3 + n), finished_at=moved)


def test_a_staff_member_with_mfa_grants_credits_and_reads_a_reconciliation(page, staff_user, creator):
    from django.core.management import call_command

    call_command("reconcile")
    _some_work_for_the_charts()
    staff_sign_in(page, staff_user)
    expect(page.get_by_text("Business at a glance")).to_be_visible()
    screenshot(page, "staff-1-admin-home")

    page.goto("/admin/accounts/user/")
    page.fill("#searchbar", creator.email)
    page.press("#searchbar", "Enter")
    page.click(f"text={creator.email}")
    page.click("text=Grant or correct credits")
    page.fill("input[name=amount]", "250")
    page.fill("textarea[name=memo]", "Sorry for the slow render yesterday")
    page.click("input[type=submit]")
    expect(page.get_by_text("+250 credits, balance 10,250")).to_be_visible()
    screenshot(page, "staff-2-granted")

    page.goto("/admin/billing/reconcilerun/")
    page.click("button:has-text('Run reconciliation now')")
    expect(page.get_by_text("All clear.")).to_be_visible()
    screenshot(page, "staff-3-reconciliation")
    assert ReconcileRun.objects.count() == 2
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert (entry.actor, entry.memo) == (staff_user, "Sorry for the slow render yesterday")
