"""Who did it: every staff action on money, jobs, users and settings leaves its record."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import StaffAction
from billing.models import LedgerEntry, ReconcileFinding
from billing.services import balance_of
from generation.models import AIModel, Job, JobReport, SiteSettings
from generation.providers import PredictionRequest, get_provider
from generation.services import job_create, job_run
from generation.tests.factories import local_model, replicate_model
from generation.tests.test_back_office import act, finished_job

pytestmark = pytest.mark.django_db


def running_at_replicate(user) -> Job:
    """A job whose worker created its prediction and handed the slot back: it runs at the provider."""
    job = job_create(user=user, model=replicate_model(), prompt="a slow one", aspect_ratio="square")
    prediction = get_provider("replicate").create(
        PredictionRequest(model_ref=job.provider_ref, input={"prompt": job.prompt, "aspect_ratio": "1:1"})
    )
    Job.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now(), prediction_id=prediction.id)
    return Job.objects.get(pk=job.pk)


def test_a_staff_cancel_is_refunded_in_the_staff_members_name_with_the_reason(staff_client, creator):
    job = job_create(user=creator, model=local_model(), prompt="queued", aspect_ratio="square")
    act(staff_client, "cancel_jobs", [job], reason="Customer asked by email, ticket 42")
    refund = LedgerEntry.objects.get(kind="refund", reference=f"job:{job.id}")
    assert refund.actor_type == "staff" and refund.actor == staff_client.staff
    action = StaffAction.objects.get()
    assert (action.kind, action.staff, action.user, action.reference) == (
        "job_cancel", staff_client.staff, creator, f"job:{job.id}",
    )  # fmt: skip
    assert action.reason == "Customer asked by email, ticket 42"
    act(staff_client, "cancel_jobs", [job])  # finished now: nothing more happens or is recorded
    assert StaffAction.objects.count() == 1


def test_an_action_that_needs_a_reason_asks_for_it_and_does_nothing_until_given(staff_client, creator):
    job = finished_job(creator)
    page = act(staff_client, "refund_jobs", [job], reason=None)
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    blank = act(staff_client, "refund_jobs", [job], reason="   ")
    assert "This field is required." in blank.content.decode()
    assert not LedgerEntry.objects.filter(kind="refund").exists() and not StaffAction.objects.exists()
    act(staff_client, "refund_jobs", [job], reason="The result was blank")
    assert balance_of(creator) == 10_000
    assert StaffAction.objects.get().reason == "The result was blank"


def test_suspensions_grants_reruns_reports_and_fixes_are_recorded_and_shown(staff_client, client, creator):
    job = finished_job(creator)
    act(staff_client, "suspend", [creator], url="admin:accounts_user_changelist", reason="Chargeback abuse")
    act(staff_client, "suspend", [creator], url="admin:accounts_user_changelist", reason="again")  # no change
    act(staff_client, "unsuspend", [creator], url="admin:accounts_user_changelist", reason="Cleared by Finance")
    grant_url = reverse("admin:billing_adjust_credits") + f"?users={creator.pk}"
    token = re.search(r'name="token" value="([0-9a-f-]+)"', staff_client.get(grant_url).content.decode()).group(1)
    staff_client.post(grant_url, {"amount": 300, "memo": "Goodwill after the outage", "token": token})
    act(staff_client, "rerun_jobs", [job], reason="Outage re-run")
    client.force_login(creator)
    client.post(reverse("job_report", args=[job.id]), {"reason": "Wrong colours"})
    act(staff_client, "dismiss_reports", [JobReport.objects.get()], url="admin:generation_jobreport_changelist",
        reason="Colours match the prompt")  # fmt: skip
    failed = job_create(user=creator, model=local_model(), prompt="owed", aspect_ratio="square")
    Job.objects.filter(pk=failed.pk).update(status="failed")  # failed without its refund
    staff_client.post(reverse("admin:billing_reconcile_start"))
    finding = ReconcileFinding.objects.get(name="finished_jobs_without_refund")
    staff_client.post(reverse("admin:billing_reconcilefinding_changelist"),
                      {"action": "fix_findings", "_selected_action": [finding.pk]})  # fmt: skip

    trail = list(StaffAction.objects.order_by("created_at", "id").values_list("kind", "staff", "reason"))
    staff = staff_client.staff.pk
    assert trail == [
        ("suspend", staff, "Chargeback abuse"),
        ("unsuspend", staff, "Cleared by Finance"),
        ("grant", staff, "Goodwill after the outage"),
        ("job_rerun", staff, "Outage re-run"),
        ("report_dismiss", staff, "Colours match the prompt"),
        ("finding_fix", staff, "Failed or canceled jobs that were not refunded, or results a job lost"),
    ]
    assert StaffAction.objects.get(kind="finding_fix").details == {"check": finding.name, "repaired": 1}

    user_page = staff_client.get(reverse("admin:accounts_user_change", args=[creator.pk])).content.decode()
    assert "Chargeback abuse" in user_page and "Outage re-run" in user_page and "Full staff trail" in user_page
    job_page = staff_client.get(reverse("admin:generation_job_change", args=[job.pk])).content.decode()
    assert "Outage re-run" in job_page and "Colours match the prompt" in job_page
    assert "Chargeback abuse" not in job_page
    listing = reverse("admin:accounts_staffaction_changelist")
    suspensions = staff_client.get(listing, {"kind__exact": "suspend"}).content.decode()
    assert "Chargeback abuse" in suspensions and "Outage re-run" not in suspensions
    by_job = staff_client.get(listing, {"q": f"job:{job.pk}"}).content.decode()
    assert "Outage re-run" in by_job and "Chargeback abuse" not in by_job


def test_a_price_change_and_the_emergency_switch_ask_why_and_are_recorded(staff_client):
    model = local_model()
    url = reverse("admin:generation_aimodel_change", args=[model.pk])
    data = {
        "key": model.key, "name": model.name, "description": "", "kind": model.kind, "provider": model.provider,
        "provider_ref": "", "credit_cost": 750, "timeout_seconds": 60, "aspect_ratios": '{"square": "1:1"}',
        "input_defaults": "{}", "enabled": "on", "position": 0, "provider_usd_per_run": "0",
        "provider_usd_per_second": "0", "duration_seconds": "", "upscale_factor": "", "max_outputs": 1,
        "image_input": "input_image",
    }  # fmt: skip
    refused = staff_client.post(url, data)
    assert refused.status_code == 200 and AIModel.objects.get(pk=model.pk).credit_cost == 500
    assert staff_client.post(url, data | {"staff_reason": "Provider raised its price"}).status_code == 302
    assert AIModel.objects.get(pk=model.pk).credit_cost == 750
    price = StaffAction.objects.get(kind="price")
    assert price.reason == "Provider raised its price" and price.reference == f"aimodel:{model.pk}"
    assert price.details["changes"]["credit_cost"] == [500, 750]

    switch = SiteSettings.objects.get_or_create(pk=1)[0]
    url = reverse("admin:generation_sitesettings_change", args=[switch.pk])
    staff_client.post(url, {"pause_message": "Back soon", "staff_reason": "Provider outage"})
    switch.refresh_from_db()
    assert switch.generation_enabled is False
    action = StaffAction.objects.get(kind="settings")
    assert action.reason == "Provider outage" and action.details["changes"]["generation_enabled"] == [True, False]


@pytest.mark.parametrize(("action", "recorded"), [("refund_jobs", "job_refund"), ("cancel_jobs", "job_cancel")])
def test_a_staff_refund_or_cancel_of_a_running_job_cancels_its_prediction(
    staff_client, creator, fake_replicate, action, recorded
):
    fake_replicate.predict_seconds = 30
    job = running_at_replicate(creator)
    act(staff_client, action, [job], reason="Stuck for the customer")
    job.refresh_from_db()
    assert job.status == "canceled"
    assert fake_replicate.predictions[job.prediction_id].cancel_count == 1
    refund = LedgerEntry.objects.get(kind="refund", reference=f"job:{job.id}")
    assert refund.actor == staff_client.staff and balance_of(creator) == 10_000
    assert StaffAction.objects.get().kind == recorded


def test_the_trail_is_append_only_in_the_database(staff_user, creator):
    from django.db import IntegrityError, transaction

    from accounts.services import staff_action_record

    action = staff_action_record(staff=staff_user, kind="suspend", user=creator, reason="Spam")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        StaffAction.objects.filter(pk=action.pk).update(reason="Nothing happened")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        StaffAction.objects.filter(pk=action.pk).delete()
    assert StaffAction.objects.get().reason == "Spam"


def test_a_quick_edit_from_the_model_list_is_recorded_too(staff_client):
    model = local_model()
    staff_client.post(
        reverse("admin:generation_aimodel_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(model.pk),
            "form-0-position": "0",
            "_save": "Save",
        },
    )  # fmt: skip  (enabled unticked)
    assert AIModel.objects.get(pk=model.pk).enabled is False
    action = StaffAction.objects.get()
    assert (action.kind, action.staff, action.reason) == ("price", staff_client.staff, "")
    assert action.details["changes"] == {"enabled": [True, False]}


def test_making_someone_staff_asks_why_and_is_recorded_on_their_page(staff_client, creator):
    url = reverse("admin:accounts_user_change", args=[creator.pk])
    data = {"email": creator.email, "name": "Ada", "is_active": "on", "is_staff": "on", "notify_long_jobs": "",
            "jobs-TOTAL_FORMS": "0", "jobs-INITIAL_FORMS": "0"}  # fmt: skip
    refused = staff_client.post(url, data)
    assert refused.status_code == 200 and "staff_reason" in refused.context["adminform"].form.errors
    creator.refresh_from_db()
    assert not creator.is_staff
    assert staff_client.post(url, data | {"staff_reason": "Joins Support"}).status_code == 302
    action = StaffAction.objects.get(kind="user")
    assert action.user == creator and action.reason == "Joins Support"
    assert action.details["changes"]["is_staff"] == [False, True]
    assert "Joins Support" in staff_client.get(url).content.decode()


def test_a_finding_links_its_examples_to_the_admin_and_the_stripe_dashboard(settings):
    from billing.backoffice import finding_links

    settings.STRIPE_SECRET_KEY = "sk_test_x"
    links = dict(finding_links({"invoice": "in_123", "customer": "cus_9", "amount_paid": 500, "user_id": 7}))
    assert links["in_123"] == "https://dashboard.stripe.com/test/invoices/in_123"
    assert links["cus_9"] == "https://dashboard.stripe.com/test/customers/cus_9"
    assert links["user 7"] == reverse("admin:accounts_user_change", args=[7])
    assert dict(finding_links({"session": "cs_1"}))["cs_1"].endswith("?q=cs_1")
    # Jobs are generation's: billing links them through the page generation registered.
    job_id = "0b6f3c2e-8f1d-4c36-9f5e-2d7a7f0c1a11"
    job_page = reverse("admin:generation_job_change", args=[job_id])
    assert dict(finding_links({"job": job_id})) == {"job 0b6f3c2e": job_page}
    assert dict(finding_links({"reference": f"job:{job_id}"})) == {f"job:{job_id}": job_page}


def test_the_staff_trail_links_each_action_to_the_admin_page_of_what_it_was_on(staff_client, creator):
    job = job_create(user=creator, model=local_model(), prompt="queued", aspect_ratio="square")
    act(staff_client, "cancel_jobs", [job], reason="Customer asked by email, ticket 42")
    page = staff_client.get(reverse("admin:accounts_staffaction_changelist")).content.decode()
    assert f'<a href="{reverse("admin:generation_job_change", args=[job.id])}">job:{job.id}</a>' in page


def test_a_finding_fixed_from_the_admin_writes_its_repairs_in_the_staff_members_name(staff_client, creator):
    failed = job_create(user=creator, model=local_model(), prompt="owed", aspect_ratio="square")
    Job.objects.filter(pk=failed.pk).update(status="failed")  # failed without its refund
    staff_client.post(reverse("admin:billing_reconcile_start"))
    finding = ReconcileFinding.objects.get(name="finished_jobs_without_refund")
    staff_client.post(reverse("admin:billing_reconcilefinding_changelist"),
                      {"action": "fix_findings", "_selected_action": [finding.pk]})  # fmt: skip
    refund = LedgerEntry.objects.get(idempotency_key=f"refund:{failed.pk}")
    assert refund.actor_type == "staff" and refund.actor == staff_client.staff
    # The same repair from the command line is the system's.
    other = job_create(user=creator, model=local_model(), prompt="owed too", aspect_ratio="square")
    Job.objects.filter(pk=other.pk).update(status="failed")
    from django.core.management import call_command

    call_command("reconcile", "--fix")
    assert LedgerEntry.objects.get(idempotency_key=f"refund:{other.pk}").actor_type == "system"


def test_a_staff_rerun_draws_a_new_seed_unless_the_person_chose_one(staff_client, creator):
    drawn = finished_job(creator)
    chosen = job_create(user=creator, model=local_model(), prompt="kept", aspect_ratio="square", seed=1234)
    job_run(job_id=chosen.id)
    act(staff_client, "rerun_jobs", [drawn, chosen], reason="Bad results after the outage")
    again_drawn = Job.objects.exclude(pk=drawn.pk).get(prompt=drawn.prompt)
    again_chosen = Job.objects.exclude(pk=chosen.pk).get(prompt="kept")
    assert again_drawn.seed != Job.objects.get(pk=drawn.pk).seed and not again_drawn.seed_chosen
    assert again_chosen.seed == 1234 and again_chosen.seed_chosen
