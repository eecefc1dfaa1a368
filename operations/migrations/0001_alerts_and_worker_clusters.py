"""AlertState and WorkerCluster move here from generation, as they are: their tables keep their
names, so only Django's idea of which app owns them changes (no SQL runs)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("generation", "0015_job_database_defaults")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AlertState",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("key", models.CharField(max_length=64, unique=True)),
                        ("last_sent_at", models.DateTimeField()),
                        ("last_message", models.TextField(blank=True)),
                    ],
                    options={"db_table": "generation_alertstate"},
                ),
                migrations.CreateModel(
                    name="WorkerCluster",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200, unique=True)),
                        ("host", models.CharField(blank=True, max_length=200)),
                        ("pid", models.PositiveIntegerField(blank=True, null=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("last_heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("tasks_done", models.PositiveBigIntegerField(default=0)),
                        ("restarts", models.PositiveIntegerField(default=0)),
                        ("last_restart_at", models.DateTimeField(blank=True, null=True)),
                        ("last_restart_reason", models.CharField(blank=True, max_length=200)),
                        ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("stopped_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"ordering": ["name"], "db_table": "generation_workercluster"},
                ),
            ],
            database_operations=[],
        )
    ]
