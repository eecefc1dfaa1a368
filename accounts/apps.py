from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from dreampixel.references import reference_register

        # Staff actions on a person (`user:<id>`) link to their admin page.
        reference_register("user", admin="admin:accounts_user_change")
