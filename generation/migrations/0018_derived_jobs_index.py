"""The index behind "made from this result": built concurrently, the jobs table stays writable."""

from django.db import migrations, models

from core.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("generation", "0017_outputs_upscale_animate")]

    operations = [
        AddIndexWithoutLocking(
            model_name="job",
            index=models.Index(
                condition=models.Q(("source_output__isnull", False)),
                fields=["source_output"],
                name="generation_job_derived_idx",
            ),
        ),
    ]
