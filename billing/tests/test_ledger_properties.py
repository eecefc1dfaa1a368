"""Random sequences of ledger operations against a tiny in-memory model of the rules."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import (
    IdempotencyConflict,
    InsufficientCredits,
    RefundNotAllowed,
    balance_of,
    credits_charge,
    credits_grant,
    credits_refund,
)

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 2_000)),
        st.tuples(st.just("charge"), st.integers(1, 1_500)),
        st.tuples(st.just("refund"), st.integers(0, 30)),  # which earlier charge
        st.tuples(st.just("replay"), st.integers(0, 30)),  # which earlier operation
        st.tuples(st.just("conflict"), st.integers(0, 30)),  # an earlier key, another amount
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_sequences_keep_balance_history_and_invariants(ops):
    user = UserFactory()
    run = uuid.uuid4().hex[:8]
    model_balance = 0
    model_history: list[tuple[str, int]] = []  # (kind, amount), oldest first
    done: list[tuple[str, str, int]] = []  # (operation, key, amount) that succeeded
    charges: list[tuple[str, int]] = []  # (charge key, amount)
    refunded: set[str] = set()

    for step, (op, value) in enumerate(ops):
        key = f"{run}:{step}"
        if op == "grant":
            credits_grant(user=user, amount=value, key=key)
            model_balance += value
            model_history.append(("purchase", value))
            done.append(("grant", key, value))
        elif op == "charge":
            if value > model_balance:
                with pytest.raises(InsufficientCredits):
                    credits_charge(user=user, amount=value, key=key)
            else:
                credits_charge(user=user, amount=value, key=key)
                model_balance -= value
                model_history.append(("charge", -value))
                charges.append((key, value))
                done.append(("charge", key, value))
        elif op == "refund" and charges:
            charge_key, amount = charges[value % len(charges)]
            if charge_key in refunded:
                with pytest.raises(RefundNotAllowed):
                    credits_refund(charge_key=charge_key, key=f"{key}:refund")
            else:
                credits_refund(charge_key=charge_key, key=f"refund:{charge_key}")
                refunded.add(charge_key)
                model_balance += amount
                model_history.append(("refund", amount))
        elif op == "replay" and done:
            kind, earlier_key, amount = done[value % len(done)]
            service = credits_grant if kind == "grant" else credits_charge
            entry = service(user=user, amount=amount, key=earlier_key)
            assert entry.idempotency_key == earlier_key
        elif op == "conflict" and done:
            kind, earlier_key, amount = done[value % len(done)]
            service = credits_grant if kind == "grant" else credits_charge
            with pytest.raises(IdempotencyConflict):
                service(user=user, amount=amount + 1, key=earlier_key)

        entries = list(LedgerEntry.objects.filter(account__user=user).order_by("created_at", "id"))
        assert balance_of(user) == model_balance == sum(e.amount for e in entries)
        assert model_balance >= 0
        assert [(e.kind, e.amount) for e in entries] == model_history
        running = 0
        for entry in entries:
            running += entry.amount
            assert entry.balance_after == running >= 0
