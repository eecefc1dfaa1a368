"""Several results per job, upscales and animated photos: the catalog's and the jobs' new columns.

Every new jobs column is nullable or has a database default, so adding it rewrites nothing;
the index on source_output is built concurrently by 0018."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0016_operations_models_moved"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="aimodel",
            name="image_input",
            field=models.CharField(blank=True, db_default="input_image", default="input_image", max_length=40),
        ),
        migrations.AddField(
            model_name="aimodel",
            name="max_outputs",
            field=models.PositiveSmallIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name="aimodel",
            name="upscale_factor",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="failed_outputs",
            field=models.SmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="job",
            name="num_outputs",
            field=models.SmallIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name="job",
            name="source_output",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="derived_jobs",
                to="generation.joboutput",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="upscale_factor",
            field=models.SmallIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="aimodel",
            name="kind",
            field=models.CharField(
                choices=[
                    ("image", "Image"),
                    ("image_edit", "Photo edit"),
                    ("video", "Video"),
                    ("upscale", "Upscale"),
                    ("animate", "Animated photo"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(
                choices=[
                    ("image", "Image"),
                    ("image_edit", "Photo edit"),
                    ("video", "Video"),
                    ("upscale", "Upscale"),
                    ("animate", "Animated photo"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="aimodel",
            constraint=models.CheckConstraint(
                condition=models.Q(("max_outputs__gte", 1), ("max_outputs__lte", 4)),
                name="generation_aimodel_outputs_range",
            ),
        ),
    ]
