"""Addresses stored before sign-up folded spellings (core/addresses.py) are brought to their one
spelling, so that account uniqueness (and every lookup by address) sees one inbox as one account.

Only rows that are not already plain lowercase ASCII are read (a regex the database evaluates);
an address whose one spelling another account already has, or that has none, is left as it is
(the signup bonus is keyed by the folded form whatever is stored)."""

from django.db import IntegrityError, migrations, transaction

from core.addresses import UnsafeAddress, email_canonical

PLAIN = r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$"


def _fold(rows) -> None:
    # `rows`: the historical model's manager, User's or EmailAddress's.
    for row in rows.exclude(email__regex=PLAIN).only("pk", "email").iterator():
        try:
            canonical = email_canonical(row.email)
        except UnsafeAddress:
            continue
        if canonical == row.email or rows.filter(email__iexact=canonical).exclude(pk=row.pk).exists():
            continue
        try:
            with transaction.atomic():
                rows.filter(pk=row.pk).update(email=canonical)
        except IntegrityError:
            continue  # taken meanwhile: left as it is


def fold_stored_addresses(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    _fold(User.objects)
    _fold(EmailAddress.objects)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_encrypt_mfa_secrets"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(fold_stored_addresses, migrations.RunPython.noop)]
