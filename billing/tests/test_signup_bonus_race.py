"""One signup bonus per mailbox when accounts race for it (on PostgreSQL)."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry, SignupBonusClaim
from billing.services import signup_bonus_grant
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def test_accounts_racing_for_one_mailbox_get_one_bonus_between_them():
    # Six spellings of one Gmail mailbox, each verified on its own account, granted at once.
    spellings = ["racer@gmail.com", "r.acer@gmail.com", "Racer+a@gmail.com", "ra.cer+b@gmail.com",
                 "RACER@googlemail.com", "r.a.c.e.r@gmail.com"]  # fmt: skip
    users = []
    for address in spellings:
        user = UserFactory.create(email=address.lower())
        EmailAddress.objects.update_or_create(
            user=user, email=address.lower(), defaults={"verified": True, "primary": True}
        )
        users.append(user)

    results = run_at_once(len(users), lambda i: signup_bonus_grant(user=users[i]))

    assert not [r for r in results if isinstance(r, Exception)], results
    granted = [r for r in results if r is not None]
    assert len(granted) == 1
    assert LedgerEntry.objects.filter(kind="signup_bonus").count() == 1
    assert SignupBonusClaim.objects.count() == 1
    assert SignupBonusClaim.objects.get().user_id == granted[0].account.user_id
