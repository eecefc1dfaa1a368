from __future__ import annotations

from django.dispatch import receiver

from accounts.services import account_deleting
from generation.services.actions import account_content_delete


@receiver(account_deleting, dispatch_uid="generation_delete_account_content")
def delete_account_content(sender, user, **kwargs) -> None:
    account_content_delete(user=user)
