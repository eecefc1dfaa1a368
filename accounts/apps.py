from django.apps import AppConfig

from core.references import REFERENCE_KINDS, ReferencePages


class AccountsConfig(AppConfig):
    name = "accounts"
    # Not "Accounts": allauth's email addresses have a section of that name too.
    verbose_name = "Users and staff"

    def ready(self) -> None:
        # Staff actions on a person (`user:<id>`) link to their admin page.
        REFERENCE_KINDS.register("user", ReferencePages(admin="admin:accounts_user_change"))
