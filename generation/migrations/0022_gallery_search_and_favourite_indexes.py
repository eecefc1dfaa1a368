"""The gallery's favourites and search indexes, built without locking the jobs table. The
search index is PostgreSQL's alone, written out in generation/search.py beside the query that
must spell its expression the same way."""

from django.db import migrations, models

from core.migration_operations import AddIndexWithoutLocking
from generation.search import search_index_operation


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("generation", "0021_shapes_negative_prompts_favourites")]

    operations = [
        AddIndexWithoutLocking(
            model_name="job",
            index=models.Index(
                condition=models.Q(("favourite", True)),
                fields=["user", "-created_at", "-id"],
                name="generation_job_user_fav_idx",
            ),
        ),
        search_index_operation(),
    ]
