from django.apps import AppConfig

from core.references import REFERENCE_KINDS, ReferencePages


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Staff actions on a person (`user:<id>`) link to their admin page.
        REFERENCE_KINDS.register("user", ReferencePages(admin="admin:accounts_user_change"))
