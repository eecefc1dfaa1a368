"""The gallery's favourites and search indexes, built without locking the jobs table.

Search needs btree_gin so the person's id and the prompt's words share one GIN index (a trusted
extension since PostgreSQL 13: the database owner may create it)."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.contrib.postgres.operations import BtreeGinExtension
from django.db import migrations, models

from core.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("generation", "0030_shapes_negative_prompts_favourites")]

    operations = [
        BtreeGinExtension(),
        AddIndexWithoutLocking(
            model_name="job",
            index=models.Index(
                condition=models.Q(("favourite", True)),
                fields=["user", "-created_at", "-id"],
                name="generation_job_user_fav_idx",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="job",
            index=django.contrib.postgres.indexes.GinIndex(
                models.F("user"),
                django.contrib.postgres.search.SearchVector("prompt", config="english"),
                name="generation_job_search_idx",
            ),
        ),
    ]
