from django.db import migrations


def install(apps, schema_editor):
    from generation.schedules import install_schedules

    install_schedules(apps.get_model("django_q", "Schedule"))


class Migration(migrations.Migration):
    dependencies = [("generation", "0005_reports_and_notifications")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
