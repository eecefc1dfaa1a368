"""The recurring tasks were installed here; every `migrate` now brings them up to date
(operations/apps.py, after migrating), so this step stays in the history and does nothing."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("generation", "0005_reports_and_notifications")]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
