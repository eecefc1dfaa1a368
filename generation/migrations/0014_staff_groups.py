"""Staff roles as groups. The roles now live in operations/staff_roles.py and are installed by
operations' 0002 (a migration of generation may not import the app above it); this step stays
in the history so databases that ran it see no change."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0004_users_list_index"),
        ("billing", "0009_signup_bonus_claims"),
        ("generation", "0013_heartbeats_and_requeue"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
