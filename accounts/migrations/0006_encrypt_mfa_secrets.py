"""Second-factor secrets stored in plain text until now are encrypted (accounts/mfa.py).

Runs with the release's MFA_ENCRYPTION_KEYS. Web processes of the previous release, still
serving while it runs, cannot read an encrypted secret: staff signing in during the deploy may
have to enter their code again once it is done."""

from django.db import migrations

from accounts.mfa import authenticators_encrypt


def encrypt_stored_secrets(apps, schema_editor):
    authenticators_encrypt(apps.get_model("mfa", "Authenticator"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_staff_action_kinds"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_stored_secrets, migrations.RunPython.noop)]
