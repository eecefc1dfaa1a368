from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.tests.factories import UserFactory
from billing.models import CreditAccount, LedgerEntry
from billing.services import (
    IdempotencyConflict,
    InsufficientCredits,
    RefundNotAllowed,
    balance_of,
    credits_adjust,
    credits_charge,
    credits_clawback,
    credits_grant,
    credits_refund,
)

pytestmark = pytest.mark.django_db

Kind = LedgerEntry.Kind


def entries_total(user) -> int:
    return sum(LedgerEntry.objects.filter(account__user=user).values_list("amount", flat=True))


def test_grant_charge_and_refund_move_the_balance_with_their_entries():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_1", reference="checkout:cs_1")
    charge = credits_charge(user=user, amount=500, key="charge:job-1", reference="job:job-1")
    assert (charge.amount, charge.balance_after) == (-500, 500)
    assert balance_of(user) == 500

    refund = credits_refund(charge_key="charge:job-1", key="refund:job-1")
    assert (refund.kind, refund.amount, refund.balance_after) == (Kind.REFUND, 500, 1_000)
    assert refund.refund_of == charge
    assert refund.reference == "job:job-1"
    assert balance_of(user) == entries_total(user) == 1_000


def test_a_charge_beyond_the_balance_changes_nothing_and_says_why():
    user = UserFactory()
    credits_grant(user=user, amount=400, key="purchase:cs_2")
    with pytest.raises(InsufficientCredits, match="Not enough credits: this needs 500 and you have 400"):
        credits_charge(user=user, amount=500, key="charge:job-2")
    assert balance_of(user) == 400
    assert not LedgerEntry.objects.filter(idempotency_key="charge:job-2").exists()


def test_replaying_any_operation_with_its_key_changes_nothing():
    user = UserFactory()
    first_grant = credits_grant(user=user, amount=1_000, key="purchase:cs_3")
    first_charge = credits_charge(user=user, amount=300, key="charge:job-3")
    first_refund = credits_refund(charge_key="charge:job-3", key="refund:job-3")
    first_adjust = credits_adjust(user=user, amount=50, memo="goodwill", key="adjust:ticket-9")
    for _ in range(3):
        assert credits_grant(user=user, amount=1_000, key="purchase:cs_3") == first_grant
        assert credits_charge(user=user, amount=300, key="charge:job-3") == first_charge
        assert credits_refund(charge_key="charge:job-3", key="refund:job-3") == first_refund
        assert credits_adjust(user=user, amount=50, memo="goodwill", key="adjust:ticket-9") == first_adjust
    assert balance_of(user) == 1_050
    assert LedgerEntry.objects.filter(account__user=user).count() == 4


def test_a_replayed_charge_is_answered_even_when_the_balance_is_now_too_low():
    user = UserFactory()
    credits_grant(user=user, amount=500, key="purchase:cs_low")
    first = credits_charge(user=user, amount=500, key="charge:job-low")
    assert balance_of(user) == 0
    assert credits_charge(user=user, amount=500, key="charge:job-low") == first  # not "not enough credits"
    credits_grant(user=user, amount=700, key="purchase:cs_more")
    assert credits_charge(user=user, amount=500, key="charge:job-low") == first  # the balance moved back
    assert balance_of(user) == entries_total(user) == 700
    with pytest.raises(IdempotencyConflict):
        credits_charge(user=user, amount=200, key="charge:job-low")
    assert balance_of(user) == 700


def test_the_same_key_with_another_amount_or_kind_is_refused():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_4")
    credits_charge(user=user, amount=300, key="charge:job-4")
    with pytest.raises(IdempotencyConflict):
        credits_grant(user=user, amount=2_000, key="purchase:cs_4")
    with pytest.raises(IdempotencyConflict):
        credits_charge(user=user, amount=301, key="charge:job-4")
    with pytest.raises(IdempotencyConflict):
        credits_grant(user=user, amount=300, key="charge:job-4")
    other = UserFactory()
    with pytest.raises(IdempotencyConflict):
        credits_grant(user=other, amount=1_000, key="purchase:cs_4")
    assert balance_of(user) == 700
    assert balance_of(other) == 0


def test_a_refund_is_only_for_a_charge_once_and_for_its_amount():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_5")
    credits_charge(user=user, amount=500, key="charge:job-5")
    with pytest.raises(RefundNotAllowed, match="no charge"):
        credits_refund(charge_key="purchase:cs_5", key="refund:cs_5")
    with pytest.raises(RefundNotAllowed, match="no charge"):
        credits_refund(charge_key="charge:missing", key="refund:missing")
    credits_refund(charge_key="charge:job-5", key="refund:job-5")
    with pytest.raises(RefundNotAllowed, match="already refunded"):
        credits_refund(charge_key="charge:job-5", key="refund:job-5-again")
    assert balance_of(user) == 1_000


def test_an_adjustment_needs_a_memo_records_the_staff_member_and_cannot_overdraw():
    user = UserFactory()
    staff = UserFactory(is_staff=True)
    entry = credits_adjust(user=user, amount=250, memo="Sorry about the outage", staff=staff)
    assert (entry.kind, entry.actor, entry.actor_type, entry.memo) == (
        Kind.ADJUSTMENT,
        staff,
        "staff",
        "Sorry about the outage",
    )
    with pytest.raises(ValueError, match="memo"):
        credits_adjust(user=user, amount=5, memo="  ", staff=staff)
    with pytest.raises(InsufficientCredits):
        credits_adjust(user=user, amount=-251, memo="too much", staff=staff)
    assert balance_of(user) == 250


def test_only_a_clawback_may_take_the_balance_below_zero():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_6")
    credits_charge(user=user, amount=800, key="charge:job-6")
    entry = credits_clawback(user=user, amount=1_000, key="clawback:re_1", reference="refund:re_1")
    assert entry.balance_after == -800
    with pytest.raises(InsufficientCredits):
        credits_charge(user=user, amount=1, key="charge:job-7")
    assert balance_of(user) == entries_total(user) == -800


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing_ledgerentry SET amount = 1000000 WHERE id = %s",
        "UPDATE billing_ledgerentry SET memo = 'edited' WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ],
)
def test_the_database_rejects_changing_or_deleting_a_ledger_row(statement):
    user = UserFactory()
    entry = credits_grant(user=user, amount=1_000, key="purchase:cs_7")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 1_000


def test_python_refuses_to_change_or_delete_entries_too():
    user = UserFactory()
    entry = credits_grant(user=user, amount=1_000, key="purchase:cs_8")
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=5)
    with pytest.raises(TypeError, match="append-only"):
        LedgerEntry.objects.filter(pk=entry.pk).delete()


@pytest.mark.parametrize(
    ("kind", "amount"),
    [("charge", 500), ("purchase", -500), ("refund", 500), ("adjustment", 0), ("clawback", 10)],
)
def test_the_database_enforces_the_sign_of_each_kind(kind, amount):
    user = UserFactory()
    account = CreditAccount.objects.create(user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            account=account, kind=kind, amount=amount, balance_after=max(amount, 0), idempotency_key=f"raw:{kind}",
            actor_type="system",
        )  # fmt: skip


def test_the_database_allows_one_refund_per_charge():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:cs_9")
    charge = credits_charge(user=user, amount=500, key="charge:job-9")
    credits_refund(charge_key="charge:job-9", key="refund:job-9")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            account=charge.account, kind="refund", amount=500, balance_after=1_500, idempotency_key="raw:refund-2",
            refund_of=charge, actor_type="system",
        )  # fmt: skip
