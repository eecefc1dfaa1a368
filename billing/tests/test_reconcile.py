from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.tests.factories import UserFactory
from billing.services import credits_charge, credits_clawback, credits_grant, credits_refund

pytestmark = pytest.mark.django_db


def reconcile_json(capsys) -> tuple[dict, bool]:
    failed = False
    try:
        call_command("reconcile", "--json")
    except CommandError as error:
        assert error.returncode == 1
        failed = True
    return json.loads(capsys.readouterr().out), failed


@pytest.fixture
def busy_ledger():
    users = UserFactory.create_batch(3)
    for n, user in enumerate(users):
        credits_grant(user=user, amount=3_000, key=f"signup:{user.pk}", kind="signup_bonus")
        credits_charge(user=user, amount=500, key=f"charge:a{n}", reference=f"order:a{n}")
        credits_charge(user=user, amount=1_000, key=f"charge:b{n}", reference=f"order:b{n}")
        credits_refund(charge_key=f"charge:b{n}", key=f"refund:b{n}")
    return users


def test_a_consistent_ledger_reports_clean(busy_ledger, capsys):
    report, failed = reconcile_json(capsys)
    assert not failed
    assert report["ok"] is True
    assert all(finding["count"] == 0 for finding in report["findings"].values())

    call_command("reconcile")
    assert "All clear." in capsys.readouterr().out


def test_a_balance_tampered_with_in_sql_is_found(busy_ledger, capsys):
    victim = busy_ledger[1]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_creditaccount SET balance = balance + 10000 WHERE user_id = %s", [victim.pk])

    report, failed = reconcile_json(capsys)
    assert failed and report["ok"] is False
    mismatch = report["findings"]["balance_mismatch"]
    assert mismatch["count"] == 1
    assert mismatch["examples"][0]["email"] == victim.email
    assert mismatch["examples"][0]["balance"] == mismatch["examples"][0]["entries_total"] + 10_000

    with pytest.raises(CommandError):
        call_command("reconcile")
    out = capsys.readouterr().out
    assert "cached balance is not the sum" in out and victim.email in out


def test_negative_balances_are_reported(busy_ledger, capsys):
    credits_clawback(user=busy_ledger[0], amount=5_000, key="clawback:dp_1")
    report, failed = reconcile_json(capsys)
    assert failed
    assert report["findings"]["negative_balance"]["count"] == 1
    assert report["findings"]["balance_mismatch"]["count"] == 0


def test_an_entry_whose_balance_after_breaks_the_running_sum_is_found(busy_ledger, capsys):
    from billing.models import LedgerEntry

    account = busy_ledger[2].credit_account
    with connection.cursor() as cursor:  # written behind the services' back
        cursor.execute(
            "INSERT INTO billing_ledgerentry (account_id, kind, amount, balance_after, idempotency_key, reference,"
            " actor_type, memo, created_at) VALUES (%s, 'adjustment', 5, 99999, 'raw:chain', '', 'system', '', now())",
            [account.pk],
        )
    report, failed = reconcile_json(capsys)
    chain = report["findings"]["entry_chain_broken"]
    assert failed and chain["count"] == 1
    assert chain["examples"][0]["idempotency_key"] == "raw:chain"
    assert LedgerEntry.objects.filter(idempotency_key="raw:chain").exists()


def test_a_thing_charged_in_parts_may_be_refunded_part_by_part_but_not_more_often(busy_ledger, capsys):
    from billing.models import LedgerEntry

    user = busy_ledger[0]
    for part in range(2):  # two parts of one thing (a job of two results), both refunded
        credits_charge(user=user, amount=100, key=f"charge:parts:{part}", reference="order:parts")
        credits_refund(charge_key=f"charge:parts:{part}", key=f"refund:parts:{part}")
    report, failed = reconcile_json(capsys)
    assert not failed and report["findings"]["charge_refunded_twice"]["count"] == 0

    # A refund written behind the services' back, giving back another thing's charge under this
    # thing's reference: three refunds of a thing charged twice.
    other = LedgerEntry.objects.get(idempotency_key="charge:a0")
    balance = user.credit_account.balance
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_ledgerentry (account_id, kind, amount, balance_after, idempotency_key, reference,"
            " refund_of_id, actor_type, memo, created_at)"
            " VALUES (%s, 'refund', 500, %s, 'raw:refund', 'order:parts', %s, 'system', '', now())",
            [other.account_id, balance + 500, other.pk],
        )
        cursor.execute("UPDATE billing_creditaccount SET balance = balance + 500 WHERE id = %s", [other.account_id])
    report, failed = reconcile_json(capsys)
    twice = report["findings"]["charge_refunded_twice"]
    assert failed and twice["count"] == 1
    assert twice["examples"] == [{"reference": "order:parts", "refunds": 3, "charges": 2}]
