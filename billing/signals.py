from __future__ import annotations

import logging

from allauth.account.signals import email_confirmed, user_signed_up
from django.db import transaction
from django.dispatch import receiver

from accounts.models import User
from accounts.services import account_deleting
from billing.services import signup_bonus_grant
from billing.stripe_client import payments_configured
from billing.stripe_services import subscriptions_cancel_for_user

logger = logging.getLogger(__name__)


# An email sign-up earns the bonus when its address is verified; a Google sign-up with a
# verified address earns it at sign-up. The key `signup:<user>` makes repeats no-ops.
@receiver(email_confirmed, dispatch_uid="billing_signup_bonus_on_email_confirmed")
def grant_bonus_on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    transaction.on_commit(lambda: signup_bonus_grant(user=email_address.user))


@receiver(user_signed_up, dispatch_uid="billing_signup_bonus_on_signed_up")
def grant_bonus_on_signed_up(sender, request, user, **kwargs) -> None:
    transaction.on_commit(lambda: signup_bonus_grant(user=user))


@receiver(account_deleting, dispatch_uid="billing_cancel_plans_of_deleted_account")
def cancel_plans_of_deleted_account(sender, user, **kwargs) -> None:
    # Once the deletion is committed (no network call inside it): the person can no longer sign
    # in to reach the portal, so their plans are canceled for them. If Stripe cannot be reached,
    # `reconcile` lists the plan (stripe_deleted_account_billed) and --fix cancels it.
    transaction.on_commit(lambda: _cancel_plans(user.pk))


def _cancel_plans(user_id: int) -> None:
    if not payments_configured():
        return
    try:
        subscriptions_cancel_for_user(user=User.objects.get(pk=user_id), comment="Account deleted")
    except Exception:
        logger.exception("Could not cancel the plans of deleted user %s; reconcile will list them", user_id)
