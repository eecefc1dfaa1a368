"""Staff roles as groups: Support and Finance (operations/staff_roles.py, docs/runbook.md).

Installed by generation's 0014 before the roles moved here; installing again only adds what is
missing, so a database that has them already is left as it is."""

from django.db import migrations

from operations.staff_roles import staff_groups_install


def create_groups(apps, schema_editor):
    staff_groups_install(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0004_users_list_index"),
        ("billing", "0009_signup_bonus_claims"),
        ("generation", "0016_operations_models_moved"),
        ("operations", "0001_alerts_and_worker_clusters"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
