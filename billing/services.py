"""The credit ledger's write side. Every change to a balance goes through here.

Each service runs in one transaction that locks the account row, writes one ledger entry and
moves the cached balance with it. Each is idempotent by its key: a replay returns the first
entry and changes nothing; the same key with a different amount, kind or account is an error.
"""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing.models import CreditAccount, LedgerEntry
from billing.pricing import SIGNUP_CREDITS

Kind = LedgerEntry.Kind
Actor = LedgerEntry.Actor


class LedgerError(Exception):
    """A ledger operation that was refused; nothing was changed."""


class InsufficientCredits(LedgerError):
    def __init__(self, *, needed: int, balance: int):
        self.needed = needed
        self.balance = balance
        super().__init__(f"Not enough credits: this needs {needed:,} and you have {max(balance, 0):,}.")


class IdempotencyConflict(LedgerError):
    pass


class RefundNotAllowed(LedgerError):
    pass


def _locked_account(user_id: int) -> CreditAccount:
    try:
        return CreditAccount.objects.select_for_update().get(user_id=user_id)
    except CreditAccount.DoesNotExist:
        CreditAccount.objects.get_or_create(user_id=user_id)
        return CreditAccount.objects.select_for_update().get(user_id=user_id)


def _replay(entry: LedgerEntry, *, account: CreditAccount | None, kind: str, amount: int) -> LedgerEntry:
    if (account is not None and entry.account_id != account.pk) or entry.kind != kind or entry.amount != amount:
        raise IdempotencyConflict(
            f"The key {entry.idempotency_key!r} was already used for {entry.get_kind_display().lower()} "
            f"{entry.amount:+,}; refusing {kind} {amount:+,} with the same key."
        )
    return entry


def _post(
    *,
    user_id: int,
    kind: str,
    amount: int,
    key: str,
    reference: str = "",
    actor_type: str,
    actor: User | None = None,
    memo: str = "",
    refund_of: LedgerEntry | None = None,
    allow_negative: bool = False,
) -> LedgerEntry:
    if not key:
        raise ValueError("Every ledger entry needs an idempotency key.")
    try:
        with transaction.atomic():
            # The row lock serializes writers of one account; the key is looked up after it,
            # so a concurrent replay sees the first writer's committed entry.
            account = _locked_account(user_id)
            existing = LedgerEntry.objects.filter(idempotency_key=key).first()
            if existing is not None:
                return _replay(existing, account=account, kind=kind, amount=amount)
            if refund_of is not None and LedgerEntry.objects.filter(refund_of=refund_of).exists():
                raise RefundNotAllowed(f"The charge {refund_of.idempotency_key!r} was already refunded.")
            balance_after = account.balance + amount
            if amount < 0 and balance_after < 0 and not allow_negative:
                raise InsufficientCredits(needed=-amount, balance=account.balance)
            entry = LedgerEntry.objects.create(
                account=account,
                kind=kind,
                amount=amount,
                balance_after=balance_after,
                idempotency_key=key,
                reference=reference,
                refund_of=refund_of,
                actor_type=actor_type,
                actor=actor,
                memo=memo,
            )
            CreditAccount.objects.filter(pk=account.pk).update(balance=balance_after, updated_at=timezone.now())
            return entry
    except IntegrityError:
        # Only reachable when the same key is used for another account at the same moment.
        existing = LedgerEntry.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return _replay(existing, account=None, kind=kind, amount=amount)


def credits_grant(
    *,
    user: User,
    amount: int,
    key: str,
    kind: str = Kind.PURCHASE,
    reference: str = "",
    memo: str = "",
) -> LedgerEntry:
    """Add credits the user earned or bought (signup bonus, purchase, monthly plan)."""
    if kind not in (Kind.SIGNUP_BONUS, Kind.PURCHASE, Kind.SUBSCRIPTION_GRANT):
        raise ValueError(f"credits_grant cannot write a {kind!r} entry.")
    if amount <= 0:
        raise ValueError("A grant must be a positive number of credits.")
    return _post(
        user_id=user.pk, kind=kind, amount=amount, key=key, reference=reference,
        actor_type=Actor.SYSTEM, memo=memo,
    )  # fmt: skip


def credits_charge(*, user: User, amount: int, key: str, reference: str = "", memo: str = "") -> LedgerEntry:
    """Take credits for something the user asked for. Never takes the balance below zero."""
    if amount <= 0:
        raise ValueError("A charge must be a positive number of credits.")
    return _post(
        user_id=user.pk, kind=Kind.CHARGE, amount=-amount, key=key, reference=reference,
        actor_type=Actor.USER, actor=user, memo=memo,
    )  # fmt: skip


def credits_refund(
    *,
    charge_key: str,
    key: str,
    memo: str = "",
    actor: User | None = None,
) -> LedgerEntry:
    """Give back a charge in full, once. The refund's key makes a retry a no-op."""
    charge = LedgerEntry.objects.select_related("account").filter(idempotency_key=charge_key).first()
    if charge is None or charge.kind != Kind.CHARGE:
        raise RefundNotAllowed(f"There is no charge {charge_key!r} to refund.")
    return _post(
        user_id=charge.account.user_id,
        kind=Kind.REFUND,
        amount=-charge.amount,
        key=key,
        reference=charge.reference,
        actor_type=Actor.STAFF if actor is not None else Actor.SYSTEM,
        actor=actor,
        memo=memo,
        refund_of=charge,
    )


def credits_adjust(
    *,
    user: User,
    amount: int,
    memo: str,
    staff: User | None = None,
    key: str | None = None,
    reference: str = "",
) -> LedgerEntry:
    """A correction by staff (or an operator or the system, when `staff` is None), with the reason why."""
    if amount == 0:
        raise ValueError("An adjustment must change the balance.")
    if not memo.strip():
        raise ValueError("An adjustment needs a memo saying why.")
    return _post(
        user_id=user.pk,
        kind=Kind.ADJUSTMENT,
        amount=amount,
        key=key or f"adjust:{uuid.uuid4()}",
        reference=reference,
        actor_type=Actor.STAFF if staff is not None else Actor.SYSTEM,
        actor=staff,
        memo=memo.strip(),
    )


def credits_clawback(*, user: User, amount: int, key: str, reference: str = "", memo: str = "") -> LedgerEntry:
    """Take back purchased credits after a refund or a lost dispute; may leave a debt."""
    if amount <= 0:
        raise ValueError("A clawback must be a positive number of credits.")
    return _post(
        user_id=user.pk, kind=Kind.CLAWBACK, amount=-amount, key=key, reference=reference,
        actor_type=Actor.SYSTEM, memo=memo, allow_negative=True,
    )  # fmt: skip


def signup_bonus_grant(*, user: User) -> LedgerEntry | None:
    """Grant the signup credits once, and only to an account with a verified email address."""
    from allauth.account.models import EmailAddress

    if not user.is_active or not EmailAddress.objects.filter(user=user, verified=True).exists():
        return None
    return credits_grant(
        user=user,
        amount=SIGNUP_CREDITS,
        key=f"signup:{user.pk}",
        kind=Kind.SIGNUP_BONUS,
        memo="Welcome to Dream Pixel",
    )


def balance_of(user: User) -> int:
    return CreditAccount.objects.filter(user=user).values_list("balance", flat=True).first() or 0
