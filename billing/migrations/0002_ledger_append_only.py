"""The database itself refuses UPDATE and DELETE on ledger entries.

TRUNCATE is left alone on purpose: it is an owner's operation, and the test runner empties
tables with it between tests.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION billing_ledgerentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % is not allowed; write a correcting entry', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledgerentry_append_only();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledgerentry_append_only();
"""

SQLITE_UP = [
    """CREATE TRIGGER billing_ledgerentry_no_update BEFORE UPDATE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER billing_ledgerentry_no_delete BEFORE DELETE ON billing_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'billing_ledgerentry is append-only: DELETE is not allowed'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS billing_ledgerentry_no_update;",
    "DROP TRIGGER IF EXISTS billing_ledgerentry_no_delete;",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)  # None: the % in RAISE is not a placeholder
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_ledger")]

    operations = [migrations.RunPython(forwards, backwards)]
