from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from billing.models import LedgerEntry


def ledger_history(*, user: User) -> QuerySet[LedgerEntry]:
    # Newest first, served by the (account, -created_at, -id) index.
    return LedgerEntry.objects.filter(account__user=user).order_by("-created_at", "-id")
