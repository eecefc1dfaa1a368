"""AlertState and WorkerCluster now belong to operations (its 0001); their tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0015_job_database_defaults"),
        ("operations", "0001_alerts_and_worker_clusters"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AlertState"), migrations.DeleteModel(name="WorkerCluster")],
            database_operations=[],
        )
    ]
