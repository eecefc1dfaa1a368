from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgreSQL(AddIndexConcurrently):
    # Built without locking the accounts against the charges of a running site; SQLite (the
    # development default) has no such thing and builds it plainly.
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("billing", "0009_signup_bonus_claims"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgreSQL(
            model_name="creditaccount",
            index=models.Index(
                condition=models.Q(balance__lt=0), fields=["balance"], name="billing_account_in_debt_idx"
            ),
        ),
    ]
