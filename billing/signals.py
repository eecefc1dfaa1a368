from __future__ import annotations

from allauth.account.signals import email_confirmed, user_signed_up
from django.db import transaction
from django.dispatch import receiver

from billing.services import signup_bonus_grant


# An email sign-up earns the bonus when its address is verified; a Google sign-up with a
# verified address earns it at sign-up. The key `signup:<user>` makes repeats no-ops.
@receiver(email_confirmed, dispatch_uid="billing_signup_bonus_on_email_confirmed")
def grant_bonus_on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    transaction.on_commit(lambda: signup_bonus_grant(user=email_address.user))


@receiver(user_signed_up, dispatch_uid="billing_signup_bonus_on_signed_up")
def grant_bonus_on_signed_up(sender, request, user, **kwargs) -> None:
    transaction.on_commit(lambda: signup_bonus_grant(user=user))
