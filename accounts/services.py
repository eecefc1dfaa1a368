from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import User

# Sent inside the deleting transaction, before the user is anonymized, so that apps which own
# the person's content (jobs, files) can remove it. `accounts` knows none of those apps.
# Receivers must defer network work (file deletion) with transaction.on_commit.
account_deleting = Signal()


def user_update_profile(*, user: User, name: str, notify_long_jobs: bool = False) -> User:
    user.name = name.strip()
    user.notify_long_jobs = notify_long_jobs
    user.save(update_fields=["name", "notify_long_jobs"])
    return user


def user_suspend(*, user: User, suspended: bool = True) -> None:
    User.objects.filter(pk=user.pk).update(suspended_at=timezone.now() if suspended else None)


def user_delete(*, user: User) -> None:
    """Delete an account: personal data goes, the row stays for the ledger's sake."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.deleted_at is not None:
            return
        account_deleting.send(sender=User, user=user)
        EmailAddress.objects.filter(user=user).delete()
        SocialAccount.objects.filter(user=user).delete()
        Authenticator.objects.filter(user=user).delete()
        user.email = f"deleted-{user.pk}@deleted.invalid"
        user.name = ""
        user.is_active = False
        user.is_staff = False
        user.is_superuser = False
        # Also ends every other session: Django checks a hash of the password on each request.
        user.set_unusable_password()
        user.deleted_at = timezone.now()
        user.save()
