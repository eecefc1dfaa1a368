from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from billing.tests.stripe_kit import deliver, ledger, start_checkout

# Webhook work runs in a task: inline here, so each delivery has done its work when it returns.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_queue")]

STRIPE_CHECKS = (
    "stripe_paid_checkout_without_grant",
    "stripe_paid_invoice_without_grant",
    "stripe_grant_without_payment",
)


def reconcile(capsys, *args: str) -> tuple[dict, bool]:
    failed = False
    try:
        call_command("reconcile", "--json", *args)
    except CommandError as error:
        assert error.returncode == 1
        failed = True
    return json.loads(capsys.readouterr().out), failed


def test_a_paid_session_whose_webhook_never_arrived_is_found_and_fixed_once(capsys, client, stripe_fake, pack, buyer):
    session_id = start_checkout(buyer, pack)
    completed = stripe_fake.complete_checkout(session_id)  # paid; the webhook is lost

    report, failed = reconcile(capsys)
    assert failed
    finding = report["findings"]["stripe_paid_checkout_without_grant"]
    assert finding["count"] == 1 and finding["fixable"] is True
    assert finding["examples"][0]["session"] == session_id
    assert finding["examples"][0]["user_id"] == str(buyer.pk)
    assert balance_of(buyer) == 0

    report, failed = reconcile(capsys, "--fix")
    assert not failed and report["ok"] is True
    assert report["fixed"] == {"stripe_paid_checkout_without_grant": 1}
    assert ledger(buyer) == [(f"purchase:{session_id}", "purchase", 5_000)]

    # Again, and the webhook arriving late: nothing more.
    report, failed = reconcile(capsys, "--fix")
    assert not failed and report["fixed"] == {}
    deliver(client, completed)
    assert balance_of(buyer) == 5_000


def test_a_paid_plan_invoice_without_its_grant_is_found_and_fixed(capsys, stripe_fake, plan, buyer):
    stripe_fake.complete_checkout(start_checkout(buyer, plan))
    invoice_id = stripe_fake.events_of_type("invoice.paid")[-1]["data"]["object"]["id"]

    report, _ = reconcile(capsys)
    assert report["findings"]["stripe_paid_invoice_without_grant"]["examples"][0]["invoice"] == invoice_id
    assert report["findings"]["stripe_paid_checkout_without_grant"]["count"] == 0  # a plan's credits come by invoice

    report, failed = reconcile(capsys, "--fix")
    assert not failed
    assert ledger(buyer) == [(f"invoice:{invoice_id}", "subscription_grant", 15_000)]


def test_a_grant_without_a_paid_stripe_object_is_reported_for_a_person(capsys, stripe_fake, pack, buyer):
    unpaid = start_checkout(buyer, pack)  # never paid
    credits_grant(user=buyer, amount=5_000, key=f"purchase:{unpaid}", reference=f"checkout:{unpaid}")
    credits_grant(user=buyer, amount=15_000, key="invoice:in_nowhere", kind="subscription_grant",
                  reference="invoice:in_nowhere")  # fmt: skip

    report, failed = reconcile(capsys, "--fix")
    assert failed
    finding = report["findings"]["stripe_grant_without_payment"]
    assert finding["count"] == 2 and finding["fixable"] is False
    assert {e["key"] for e in finding["examples"]} == {f"purchase:{unpaid}", "invoice:in_nowhere"}
    assert balance_of(buyer) == 20_000  # reported, not taken back: a person decides


def test_paid_purchases_with_their_grants_reconcile_clean(capsys, client, stripe_fake, pack, plan, buyer):
    deliver(client, stripe_fake.complete_checkout(start_checkout(buyer, pack)))
    stripe_fake.complete_checkout(start_checkout(buyer, plan))
    deliver(client, stripe_fake.events_of_type("invoice.paid")[-1])
    report, failed = reconcile(capsys)
    assert not failed
    assert all(report["findings"][name]["count"] == 0 for name in STRIPE_CHECKS)
    assert LedgerEntry.objects.count() == 2


def test_without_stripe_keys_the_stripe_checks_are_skipped(capsys, settings):
    settings.STRIPE_SECRET_KEY = ""
    report, failed = reconcile(capsys)
    assert not failed
    for name in STRIPE_CHECKS:
        assert report["findings"][name]["count"] == 0
        assert "skipped: payments are not configured" in report["findings"][name]["description"]


def test_stripe_being_unreachable_is_a_problem_reconcile_reports(capsys, stripe_fake):
    stripe_fake.fail_requests("GET", "/v1/checkout/sessions", status=500)
    report, failed = reconcile(capsys)
    assert failed
    finding = report["findings"]["stripe_paid_checkout_without_grant"]
    assert finding["count"] == 1 and "Stripe could not be reached" in finding["description"]


def test_fixing_a_finding_from_the_admin_reads_stripe_afresh(stripe_fake, pack, buyer, staff_client):
    from django.urls import reverse

    from billing.models import ReconcileFinding

    stripe_fake.complete_checkout(start_checkout(buyer, pack))  # paid; the webhook is lost
    staff_client.post(reverse("admin:billing_reconcile_start"))  # a run in this process
    finding = ReconcileFinding.objects.get(name="stripe_paid_checkout_without_grant")
    assert finding.count == 1
    stripe_fake.complete_checkout(start_checkout(buyer, pack))  # paid after the run, webhook lost too

    staff_client.post(reverse("admin:billing_reconcilefinding_changelist"),
                      {"action": "fix_findings", "_selected_action": [finding.pk]})  # fmt: skip
    finding.refresh_from_db()
    assert finding.fixed_count == 2
    assert balance_of(buyer) == 2 * pack.credits
