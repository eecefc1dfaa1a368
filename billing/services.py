"""The credit ledger's write side. Every change to a balance goes through here.

Each service runs in one transaction that locks the account row, writes one ledger entry and
moves the cached balance with it. Each is idempotent by its key: a replay returns the first
entry and changes nothing; the same key with a different amount, kind or account is an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from allauth.account.models import EmailAddress
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import StaffAction, User
from accounts.services import staff_action_record
from billing.mailbox import mailbox_hash
from billing.models import CreditAccount, LedgerEntry, SignupBonusClaim
from billing.pricing import SIGNUP_CREDITS

Kind = LedgerEntry.Kind
Actor = LedgerEntry.Actor

# The largest correction one entry may make, either way: far above any pack or plan, far below
# what a bigint holds. A bigger one is a typo or an attack, and is refused before the ledger.
ADJUSTMENT_MAX_CREDITS = 1_000_000


class LedgerError(Exception):
    """A ledger operation that was refused; nothing was changed."""


class InsufficientCredits(LedgerError):
    def __init__(self, *, needed: int, balance: int):
        self.needed = needed
        self.balance = balance
        super().__init__(f"Not enough credits: this needs {needed:,} and you have {max(balance, 0):,}.")


class IdempotencyConflict(LedgerError):
    pass


class OwnAccountRefused(LedgerError):
    """A staff member adjusting their own balance: another staff member must do it."""


class RefundNotAllowed(LedgerError):
    pass


def _replay(entry: LedgerEntry, *, user_id: int, kind: str, amount: int) -> LedgerEntry:
    if entry.account.user_id != user_id or entry.kind != kind or entry.amount != amount:
        raise IdempotencyConflict(
            f"The key {entry.idempotency_key!r} was already used for {entry.get_kind_display().lower()} "
            f"{entry.amount:+,}; refusing {kind} {amount:+,} with the same key."
        )
    return entry


# Who a repair runs for. Staff fixing a reconcile finding from the admin run the same repair
# code as `reconcile --fix`; the entries it writes then name that staff member, not the system.
_acting_staff: ContextVar[User | None] = ContextVar("acting_staff", default=None)


@contextmanager
def ledger_acting_for(staff: User) -> Iterator[None]:
    token = _acting_staff.set(staff)
    try:
        yield
    finally:
        _acting_staff.reset(token)


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
    if actor_type == Actor.SYSTEM and _acting_staff.get() is not None:
        actor_type, actor = Actor.STAFF, _acting_staff.get()
    # A replay is answered without taking the account's lock, except for a charge: the hot path
    # is then one conditional UPDATE and one INSERT, and a replayed charge is answered
    # when its INSERT meets the unique key (rolled back with the balance), or before a refusal.
    if kind != Kind.CHARGE:
        existing = LedgerEntry.objects.select_related("account").filter(idempotency_key=key).first()
        if existing is not None:
            return _replay(existing, user_id=user_id, kind=kind, amount=amount)
    try:
        with transaction.atomic():
            moved = _move_balance(user_id=user_id, amount=amount, allow_negative=allow_negative)
            if moved is None:
                existing = LedgerEntry.objects.select_related("account").filter(idempotency_key=key).first()
                if existing is not None:  # nothing moved: a replay of a charge made before
                    return _replay(existing, user_id=user_id, kind=kind, amount=amount)
                account, _ = CreditAccount.objects.get_or_create(user_id=user_id)
                if amount < 0 and not allow_negative:
                    raise InsufficientCredits(needed=-amount, balance=account.balance)
                moved = _move_balance(user_id=user_id, amount=amount, allow_negative=allow_negative)
                # The account exists now, and a debit that could go below zero was refused above.
                assert moved is not None
            account_id, balance_after = moved
            # The row is locked from here on: writers of this account are serialized.
            if refund_of is not None and LedgerEntry.objects.filter(refund_of=refund_of).exists():
                raise RefundNotAllowed(f"The charge {refund_of.idempotency_key!r} was already refunded.")
            return LedgerEntry.objects.create(
                account_id=account_id,
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
    except IntegrityError:
        # The same key written by a concurrent call (its transaction and this one's balance
        # change were rolled back together): answer as a replay.
        existing = LedgerEntry.objects.select_related("account").filter(idempotency_key=key).first()
        if existing is not None:
            return _replay(existing, user_id=user_id, kind=kind, amount=amount)
        if refund_of is not None and LedgerEntry.objects.filter(refund_of=refund_of).exists():
            raise RefundNotAllowed(f"The charge {refund_of.idempotency_key!r} was already refunded.") from None
        raise


def _move_balance(*, user_id: int, amount: int, allow_negative: bool) -> tuple[int, int] | None:
    """Lock the account row and move its balance in one statement; None when the account does
    not exist yet or, for a debit, when the balance would go below zero (nothing changes then).

    Written out because the ORM cannot say it in one round trip: its `update()` returns a row
    count, not the new balance and the row's id, and reading them back would be a second query
    under the lock."""
    table = CreditAccount._meta.db_table
    floor = "" if amount >= 0 or allow_negative else " AND balance + %s >= 0"
    params: list[int | datetime] = [amount, timezone.now(), user_id]
    if floor:
        params.append(amount)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET balance = balance + %s, updated_at = %s WHERE user_id = %s{floor} RETURNING id, balance",  # noqa: S608 (table name from the model)
            params,
        )
        return cursor.fetchone()


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
    """A correction by staff (or an operator or the system, when `staff` is None), with the reason why.

    Nobody adjusts their own balance: the attempt is refused and recorded in the staff trail, and
    another staff member makes the correction."""
    if amount == 0:
        raise ValueError("An adjustment must change the balance.")
    if abs(amount) > ADJUSTMENT_MAX_CREDITS:
        raise ValueError(f"An adjustment moves at most {ADJUSTMENT_MAX_CREDITS:,} credits.")
    if not memo.strip():
        raise ValueError("An adjustment needs a memo saying why.")
    if staff is not None and staff.pk == user.pk:
        staff_action_record(
            staff=staff, kind=StaffAction.Kind.REFUSED, user=user, reason=memo,
            details={"refused": "credits adjustment to their own account", "amount": amount},
        )  # fmt: skip
        raise OwnAccountRefused(
            "You cannot adjust your own balance: ask another staff member. The attempt was recorded."
        )
    with transaction.atomic():
        entry = _post(
            user_id=user.pk,
            kind=Kind.ADJUSTMENT,
            amount=amount,
            key=key or f"adjust:{uuid.uuid4()}",
            reference=reference,
            actor_type=Actor.STAFF if staff is not None else Actor.SYSTEM,
            actor=staff,
            memo=memo.strip(),
        )
        if staff is not None:  # the trail, keyed by the entry: a replayed grant records nothing more
            staff_action_record(
                staff=staff, kind=StaffAction.Kind.GRANT, user=user, reference=entry.reference, reason=entry.memo,
                details={"amount": entry.amount, "entry": entry.idempotency_key}, key=f"staff:{entry.idempotency_key}",
            )  # fmt: skip
    return entry


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
    addresses = list(EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True))
    if not user.is_active or not addresses:
        return None
    hashes = {mailbox_hash(address) for address in addresses}
    try:
        with transaction.atomic():
            # One bonus per mailbox, ever: a mailbox another account (even a deleted one) claimed
            # earns nothing. The unique hash decides between two accounts racing for one mailbox.
            for value in sorted(hashes):  # one order for every caller: no deadlock between two
                claim, _ = SignupBonusClaim.objects.get_or_create(mailbox_hash=value, defaults={"user": user})
                if claim.user_id != user.pk:
                    raise _ClaimedElsewhere
            return credits_grant(
                user=user,
                amount=SIGNUP_CREDITS,
                key=f"signup:{user.pk}",
                kind=Kind.SIGNUP_BONUS,
                memo="Welcome to Dream Pixel",
            )
    except (_ClaimedElsewhere, IntegrityError):
        return None


class _ClaimedElsewhere(Exception):
    pass


def balance_of(user: User) -> int:
    return CreditAccount.objects.filter(user_id=user.pk).values_list("balance", flat=True).first() or 0
