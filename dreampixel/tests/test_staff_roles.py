"""Every admin action and view checks a permission; only superusers grant power.

A role x action matrix: each role tries each action for real (the admin's own POSTs) and the
test looks at what happened, not at which buttons were shown."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.test import Client

from accounts.models import StaffAction, User
from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry, ReconcileRun, StripeEvent
from billing.services import balance_of, credits_grant
from generation.models import Job, JobReport
from generation.services import job_create, job_run
from generation.tests.factories import local_model
from operations import staff_roles

pytestmark = pytest.mark.django_db

ROLES = ["view only", "Support", "Finance", "superuser"]


def staff(role: str) -> User:
    email = f"{role.replace(' ', '-').lower()}@staff.example"
    if role == "superuser":
        user = User.objects.create_superuser(email=email, password="x-staff-password-1")
    else:
        user = User.objects.create_user(email=email, password="x-staff-password-1", is_staff=True)
        if role == "view only":
            user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
        else:
            user.groups.add(Group.objects.get(name=role))
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    TOTP.activate(user, generate_totp_secret())
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


def admin_client(role: str) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(staff(role))
    return client


def finished_job(customer) -> Job:
    job = job_create(user=customer, model=local_model(), prompt="A quiet harbour", aspect_ratio="square")
    job_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def run_action(client, changelist: str, action: str, pk) -> int:
    # With the reason the confirmation page asks for (actions on money, jobs and users need one).
    form = {"action": action, "_selected_action": [str(pk)], "staff_reason_given": "1", "reason": "Role test"}
    return client.post(changelist, form).status_code


# Each action: do it as `client`, return True when it took effect.
def refund_job(client, customer):
    job = finished_job(customer)
    run_action(client, "/admin/generation/job/", "refund_jobs", job.pk)
    return LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists()


def cancel_job(client, customer):
    job = job_create(user=customer, model=local_model(), prompt="Still queued", aspect_ratio="square")
    run_action(client, "/admin/generation/job/", "cancel_jobs", job.pk)
    return Job.objects.get(pk=job.pk).status == Job.Status.CANCELED


def rerun_job(client, customer):
    # Then its owner cancels it: a re-run on the house moves no credit, whatever becomes of it.
    job = finished_job(customer)
    before = balance_of(customer)
    run_action(client, "/admin/generation/job/", "rerun_jobs", job.pk)
    again = Job.objects.filter(user=customer).exclude(pk=job.pk).first()
    if again is not None:
        owner = Client()
        owner.force_login(customer)
        owner.post(f"/jobs/{again.pk}/cancel/")
        assert Job.objects.get(pk=again.pk).status == Job.Status.CANCELED
    assert balance_of(customer) == before
    return again is not None


def refund_report(client, customer):
    report = JobReport.objects.create(job=finished_job(customer), reason="Blurry")
    run_action(client, "/admin/generation/jobreport/", "refund_reports", report.pk)
    return JobReport.objects.get(pk=report.pk).status == JobReport.Status.REFUNDED


def dismiss_report(client, customer):
    report = JobReport.objects.create(job=finished_job(customer), reason="Blurry")
    run_action(client, "/admin/generation/jobreport/", "dismiss_reports", report.pk)
    return JobReport.objects.get(pk=report.pk).status == JobReport.Status.DISMISSED


def suspend_user(client, customer):
    run_action(client, "/admin/accounts/user/", "suspend", customer.pk)
    return User.objects.get(pk=customer.pk).suspended_at is not None


def adjust_credits(client, customer):
    before = balance_of(customer)
    url = f"/admin/billing/creditaccount/adjust/?users={customer.pk}"
    form = client.get(url).content.decode()
    token = re.search(r'name="token" value="([0-9a-f-]+)"', form)
    client.post(url, {"amount": 500, "memo": "Goodwill", "token": token.group(1) if token else ""})
    return balance_of(customer) == before + 500


def adjust_own_account(client, customer):
    me = User.objects.get(pk=client.session["_auth_user_id"])
    url = f"/admin/billing/creditaccount/adjust/?users={me.pk}"
    token = re.search(r'name="token" value="([0-9a-f-]+)"', client.get(url).content.decode())
    client.post(url, {"amount": 500, "memo": "For me", "token": token.group(1) if token else ""})
    return balance_of(me) != 0


def _own_finished_job(client) -> Job:
    me = User.objects.get(pk=client.session["_auth_user_id"])
    credits_grant(user=me, amount=1_000, key=f"purchase:own-{me.pk}")
    return finished_job(me)


def refund_own_job(client, customer):
    job = _own_finished_job(client)
    run_action(client, "/admin/generation/job/", "refund_jobs", job.pk)
    return LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists()


def refund_report_on_own_job(client, customer):
    report = JobReport.objects.create(job=_own_finished_job(client), reason="Blurry")
    run_action(client, "/admin/generation/jobreport/", "refund_reports", report.pk)
    return JobReport.objects.get(pk=report.pk).status == JobReport.Status.REFUNDED


def rerun_own_job(client, customer):
    job = _own_finished_job(client)
    run_action(client, "/admin/generation/job/", "rerun_jobs", job.pk)
    return Job.objects.filter(user=job.user).count() > 1


def adjust_with_out_of_range_input(client, customer):
    # Took effect: the form answered with its errors (no 5xx, nothing written).
    url = f"/admin/billing/creditaccount/adjust/?users={customer.pk},²,{'9' * 5000}"
    form = client.get(url)
    token = re.search(r'name="token" value="([0-9a-f-]+)"', form.content.decode())
    answer = client.post(url, {"amount": 2**63, "memo": "Overflow", "token": token.group(1) if token else ""})
    assert form.status_code < 500 and answer.status_code < 500
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()
    return answer.status_code == 200 and "errorlist" in answer.content.decode()


def set_customer_password(client, customer):
    new = "a brand new passphrase 42"
    client.post(f"/admin/accounts/user/{customer.pk}/password/",
                {"password1": new, "password2": new, "usable_password": "true", "reason": "Role test"})  # fmt: skip
    changed = Client().login(email=customer.email, password=new)
    recorded = StaffAction.objects.filter(kind=StaffAction.Kind.PASSWORD_SET, user=customer).exists()
    assert changed == recorded  # never one without the other
    return changed


def send_password_reset(client, customer):
    run_action(client, "/admin/accounts/user/", "send_password_reset", customer.pk)
    sent = any(customer.email in message.to for message in mail.outbox)
    assert sent == StaffAction.objects.filter(kind=StaffAction.Kind.PASSWORD_RESET, user=customer).exists()
    return sent


def start_reconcile(client, customer):
    client.post("/admin/billing/reconcilerun/start/")
    return ReconcileRun.objects.exists()


def process_stripe_event(client, customer):
    event = StripeEvent.objects.create(
        event_id="evt_roles", type="customer.created", payload={"id": "evt_roles", "type": "customer.created",
        "data": {"object": {"id": "cus_x"}}}, status="failed", error="earlier failure",
    )  # fmt: skip
    run_action(client, "/admin/billing/stripeevent/", "process_again", event.pk)
    return StripeEvent.objects.get(pk=event.pk).attempts > event.attempts


# The user page's inline of recent jobs posts its (empty) management form.
INLINE = {"jobs-TOTAL_FORMS": "0", "jobs-INITIAL_FORMS": "0", "jobs-MIN_NUM_FORMS": "0", "jobs-MAX_NUM_FORMS": "0"}


def make_self_superuser(client, customer):
    me = User.objects.get(pk=client.session["_auth_user_id"])
    form = {"email": me.email, "name": "", "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "staff_reason": "Role test", **INLINE}  # fmt: skip
    client.post(f"/admin/accounts/user/{me.pk}/change/", form)
    return User.objects.get(pk=me.pk).is_superuser and not me.is_superuser


def promote_customer_to_staff(client, customer):
    form = {"email": customer.email, "name": "", "is_active": "on", "is_staff": "on",
            "staff_reason": "Role test", **INLINE}  # fmt: skip
    client.post(f"/admin/accounts/user/{customer.pk}/change/", form)
    return User.objects.get(pk=customer.pk).is_staff


def add_permission_to_own_group(client, customer):
    group = Group.objects.get_or_create(name="Support")[0]
    everything = [str(p.pk) for p in Permission.objects.all()]
    client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Support", "permissions": everything})
    return group.permissions.count() == len(everything)


ALLOWED = {
    refund_job: {"Finance", "superuser"},
    cancel_job: {"Support", "superuser"},
    rerun_job: {"Support", "superuser"},
    refund_report: {"Finance", "superuser"},
    dismiss_report: {"Support", "Finance", "superuser"},
    suspend_user: {"Support", "superuser"},
    adjust_credits: {"Finance", "superuser"},
    adjust_own_account: set(),
    refund_own_job: set(),
    refund_report_on_own_job: set(),
    rerun_own_job: set(),
    adjust_with_out_of_range_input: {"Finance", "superuser"},
    set_customer_password: {"superuser"},
    send_password_reset: {"Support", "superuser"},
    start_reconcile: {"Finance", "superuser"},
    process_stripe_event: {"Finance", "superuser"},
    promote_customer_to_staff: {"superuser"},
    add_permission_to_own_group: {"superuser"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ALLOWED), ids=lambda action: action.__name__)
def test_each_role_can_do_exactly_its_actions(role, action, sync_queue):
    customer = UserFactory()
    credits_grant(user=customer, amount=10_000, key=f"purchase:roles-{customer.pk}")
    client = admin_client(role)
    assert action(client, customer) == (role in ALLOWED[action])


@pytest.mark.parametrize("role", ["view only", "Support", "Finance"])
def test_no_staff_member_but_a_superuser_can_make_themselves_superuser(role):
    client = admin_client(role)
    me = User.objects.get(email=f"{role.replace(' ', '-').lower()}@staff.example")
    me.user_permissions.add(Permission.objects.get(codename="change_user"))
    assert not make_self_superuser(client, None)
    assert not User.objects.get(pk=me.pk).is_superuser


def test_the_roles_exist_with_their_permissions():
    support = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    finance = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    assert {"rerun_job", "change_job", "change_user"} <= support and "refund_job" not in support
    assert {"refund_job", "change_creditaccount", "add_reconcilerun"} <= finance and "change_user" not in finance
    # Exactly the permissions the roles name, each once.
    assert len(support) == len(staff_roles.ROLES["Support"]) and len(finance) == len(staff_roles.ROLES["Finance"])


def test_a_role_naming_a_permission_that_does_not_exist_is_refused_by_name(monkeypatch):
    from django.apps import apps

    monkeypatch.setitem(staff_roles.ROLES, "Support", [*staff_roles.ROLES["Support"], "generation.paint_job"])
    with pytest.raises(
        LookupError, match=r"The Support role names permissions that do not exist: generation\.paint_job$"
    ):
        staff_roles.staff_groups_install(apps)


@pytest.mark.parametrize(("role", "reaches_staff"), [("Support", False), ("superuser", True)])
def test_suspensions_and_password_resets_reach_staff_accounts_only_from_a_superuser(role, reaches_staff):
    colleague = staff("Finance")
    client = admin_client(role)
    assert suspend_user(client, colleague) == reaches_staff
    assert send_password_reset(client, colleague) == reaches_staff
    # A customer is reached either way.
    customer = UserFactory()
    assert suspend_user(client, customer)


def test_a_refund_of_one_s_own_job_is_refused_with_a_message_and_recorded():
    client = admin_client("Finance")
    job = _own_finished_job(client)
    form = {"action": "refund_jobs", "_selected_action": [str(job.pk)], "staff_reason_given": "1", "reason": "Mine"}
    page = client.post("/admin/generation/job/", form, follow=True).content.decode()
    assert "You cannot refund your own job: ask another staff member." in page
    refusal = StaffAction.objects.get(kind=StaffAction.Kind.REFUSED, reference=f"job:{job.pk}")
    assert (refusal.reason, refusal.details["refused"]) == ("Mine", "refund of their own job")
    assert not LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists()
