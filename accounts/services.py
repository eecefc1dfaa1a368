from __future__ import annotations

from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import StaffAction, User

# Sent inside the deleting transaction, before the user is anonymized, so that apps which own
# the person's content (jobs, files) can remove it. `accounts` knows none of those apps.
# Receivers must defer network work (file deletion) with transaction.on_commit.
account_deleting = Signal()


def user_update_profile(*, user: User, name: str, notify_long_jobs: bool = False) -> User:
    user.name = name.strip()
    user.notify_long_jobs = notify_long_jobs
    user.save(update_fields=["name", "notify_long_jobs"])
    return user


def staff_action_record(
    *,
    staff: User,
    kind: str,
    user: User | int | None = None,
    reference: str = "",
    reason: str = "",
    details: dict | None = None,
    key: str | None = None,
) -> StaffAction:
    """Record a staff member's action; call it inside the transaction that does the thing.

    With a key, a replay of the same operation returns the first record and adds none."""
    fields = {
        "staff": staff,
        "kind": kind,
        "user_id": user.pk if isinstance(user, User) else user,
        "reference": reference,
        "reason": reason.strip()[:2000],
        "details": details or {},
    }
    if key is None:
        return StaffAction.objects.create(**fields)
    action, _ = StaffAction.objects.get_or_create(key=key, defaults=fields)
    return action


def user_suspend(*, user: User, suspended: bool = True, staff: User | None = None, reason: str = "") -> bool:
    """Suspend a person (or lift it). True if this changed anything; staff's change is recorded."""
    with transaction.atomic():
        if suspended:
            changed = User.objects.filter(pk=user.pk, suspended_at__isnull=True).update(suspended_at=timezone.now())
        else:
            changed = User.objects.filter(pk=user.pk, suspended_at__isnull=False).update(suspended_at=None)
        if changed and staff is not None:
            kind = StaffAction.Kind.SUSPEND if suspended else StaffAction.Kind.UNSUSPEND
            staff_action_record(staff=staff, kind=kind, user=user, reference=f"user:{user.pk}", reason=reason)
    return bool(changed)


def user_password_reset_send(*, request: HttpRequest, user: User, staff: User, reason: str) -> bool:
    """Staff send a person the password-reset email; the person chooses the new password, so
    no one on the staff can sign in as them. Recorded. False for a deleted or inactive account."""
    if user.deleted_at is not None or not user.is_active:
        return False
    form = ResetPasswordForm(data={"email": user.email})
    if not form.is_valid():
        return False
    form.save(request)  # the mail goes out here (network I/O: no transaction around it)
    staff_action_record(
        staff=staff, kind=StaffAction.Kind.PASSWORD_RESET, user=user, reference=f"user:{user.pk}", reason=reason
    )
    return True


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
