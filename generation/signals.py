from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.services import account_deleting
from generation.models import AIModel
from generation.selectors import catalog_changed
from generation.services.actions import account_content_delete


@receiver(account_deleting, dispatch_uid="generation_delete_account_content")
def delete_account_content(sender, user, **kwargs) -> None:
    account_content_delete(user=user)


@receiver(post_save, sender=AIModel, dispatch_uid="generation_catalog_saved")
@receiver(post_delete, sender=AIModel, dispatch_uid="generation_catalog_deleted")
def catalog_edited(sender, **kwargs) -> None:
    # On commit: prices read before it are of the old catalog, and a rolled-back edit changed nothing.
    transaction.on_commit(catalog_changed)


def catalog_migrated(sender, **kwargs) -> None:
    # Migrations seed and reprice the catalog through their own model classes, which send no
    # post_save of AIModel (connected in GenerationConfig.ready, for this app's migrations).
    catalog_changed()
