"""The accounts below zero, for the metrics' outstanding credits: built without locking the
accounts against the charges of a running site."""

from django.db import migrations, models

from core.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0009_signup_bonus_claims"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="creditaccount",
            index=models.Index(
                condition=models.Q(balance__lt=0), fields=["balance"], name="billing_account_in_debt_idx"
            ),
        ),
    ]
