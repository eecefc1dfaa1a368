from __future__ import annotations

from collections import Counter

import pytest

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import (
    InsufficientCredits,
    RefundNotAllowed,
    balance_of,
    credits_charge,
    credits_grant,
    credits_refund,
)
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_threads_charging_credits_for_twenty_get_exactly_twenty():
    user = UserFactory()
    credits_grant(user=user, amount=20 * 150, key="purchase:cs_hot")

    results = run_at_once(50, lambda i: credits_charge(user=user, amount=150, key=f"charge:job-{i}"))

    outcomes = Counter(type(result).__name__ for result in results)
    assert outcomes == {"LedgerEntry": 20, "InsufficientCredits": 30}
    assert all("Not enough credits" in str(r) for r in results if isinstance(r, InsufficientCredits))
    assert balance_of(user) == 0
    entries = LedgerEntry.objects.filter(account__user=user)
    assert sum(entries.values_list("amount", flat=True)) == 0
    assert entries.filter(kind="charge").count() == 20
    # Every balance-after is distinct: no two charges saw the same balance.
    assert sorted(entries.filter(kind="charge").values_list("balance_after", flat=True)) == list(range(0, 3_000, 150))


def test_twenty_threads_refunding_one_charge_refund_it_once():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_r")
    credits_charge(user=user, amount=600, key="charge:job-r")

    # Half retry the same refund (a task delivered twice), half race with their own keys
    # (the sweeper and a worker failing the same job).
    results = run_at_once(
        20,
        lambda i: credits_refund(charge_key="charge:job-r", key="refund:job-r" if i % 2 else f"refund:other-{i}"),
    )

    refunds = LedgerEntry.objects.filter(account__user=user, kind="refund")
    assert refunds.count() == 1
    assert balance_of(user) == 1_000
    succeeded = [r for r in results if isinstance(r, LedgerEntry)]
    assert {entry.pk for entry in succeeded} == {refunds.get().pk}
    assert all(isinstance(r, LedgerEntry | RefundNotAllowed) for r in results), results


def test_the_same_charge_replayed_by_many_threads_charges_once():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_d")

    results = run_at_once(10, lambda i: credits_charge(user=user, amount=400, key="charge:double-click"))

    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert balance_of(user) == 600
