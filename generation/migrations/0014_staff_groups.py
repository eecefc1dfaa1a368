"""Staff roles as groups: Support and Finance (generation/staff_roles.py, docs/runbook.md)."""

from django.db import migrations

from generation.staff_roles import staff_groups_install


def create_groups(apps, schema_editor):
    staff_groups_install(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0004_users_list_index"),
        ("billing", "0009_signup_bonus_claims"),
        ("generation", "0013_heartbeats_and_requeue"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
