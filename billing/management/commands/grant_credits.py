from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from billing.services import LedgerError, credits_adjust


class Command(BaseCommand):
    help = (
        "Grant credits to a user (or take them back with a negative AMOUNT) as an adjustment "
        "entry in the ledger, with a memo saying why. A correction never takes a balance below "
        "zero. Give --key to make the command safe to repeat: a second run with the same key "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The user's email address.")
        parser.add_argument("amount", type=int, help="Credits to add; negative to take back.")
        parser.add_argument("--memo", required=True, help="Why: shown to staff in the ledger.")
        parser.add_argument("--key", help="Idempotency key, e.g. a ticket number: repeats are no-ops.")

    def handle(self, *args, email: str, amount: int, memo: str, key: str | None, **options):
        user = User.objects.filter(email__iexact=email.strip(), deleted_at__isnull=True).first()
        if user is None:
            raise CommandError(f"No user with the email address {email!r}.")
        if not memo.strip():
            raise CommandError("--memo must say why.")
        if amount == 0:
            raise CommandError("AMOUNT must not be zero.")
        try:
            entry = credits_adjust(user=user, amount=amount, memo=memo, key=f"adjust:{key}" if key else None)
        except LedgerError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(f"{user.email}: {entry.amount:+,} credits, balance now {entry.balance_after:,}.")
        )
