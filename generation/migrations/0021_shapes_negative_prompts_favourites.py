"""More shapes per catalog entry, negative prompts where a model takes one, favourites, and a
catalog estimate of each model's run time. Columns only (each with a database default, so
adding them rewrites no table); the indexes follow in the next migration, built concurrently."""

from django.db import migrations, models

# Added to what each entry offers (the values are the model's own: Replicate's enums for
# FLUX and Seedance; the preview renderer draws every one of them).
SHAPES = {
    "local-preview": {"wide": "16:9", "tall": "9:16", "portrait_4_5": "4:5", "portrait_3_4": "3:4"},
    "flux-schnell": {"wide": "16:9", "tall": "9:16", "portrait_4_5": "4:5", "portrait_3_4": "3:4"},
    "flux-1-1-pro": {"wide": "16:9", "tall": "9:16", "portrait_4_5": "4:5", "portrait_3_4": "3:4"},
    # Videos already offer 9:16 and 16:9 as their portrait and landscape.
    "local-video-3s": {"portrait_3_4": "3:4"},
    "local-video-5s": {"portrait_3_4": "3:4"},
    "seedance-lite-3s": {"portrait_3_4": "3:4"},
    "seedance-lite-5s": {"portrait_3_4": "3:4"},
}
NEGATIVE_PROMPT_INPUTS = {"local-preview": "negative_prompt", "local-edit": "negative_prompt"}
EXPECTED_SECONDS = {
    "local-preview": 2,
    "local-edit": 2,
    "local-video-3s": 3,
    "local-video-5s": 5,
    "flux-schnell": 4,
    "flux-1-1-pro": 10,
    "flux-kontext-pro": 12,
    "seedance-lite-3s": 45,
    "seedance-lite-5s": 70,
}


def seed(apps, schema_editor):
    AIModel = apps.get_model("generation", "AIModel")
    for model in AIModel.objects.filter(key__in=set(SHAPES) | set(NEGATIVE_PROMPT_INPUTS) | set(EXPECTED_SECONDS)):
        model.aspect_ratios = {**model.aspect_ratios, **SHAPES.get(model.key, {})}
        model.negative_prompt_input = NEGATIVE_PROMPT_INPUTS.get(model.key, model.negative_prompt_input)
        model.expected_seconds = model.expected_seconds or EXPECTED_SECONDS.get(model.key)
        model.save(update_fields=["aspect_ratios", "negative_prompt_input", "expected_seconds"])


class Migration(migrations.Migration):
    dependencies = [("generation", "0020_upload_needs_cleaning")]

    operations = [
        migrations.AddField(
            model_name="aimodel",
            name="expected_seconds",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="aimodel",
            name="negative_prompt_input",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Empty when the model takes no negative prompt.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="favourite",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="job",
            name="negative_prompt",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AlterField(
            model_name="job",
            name="aspect_ratio",
            field=models.CharField(
                choices=[
                    ("portrait", "Portrait"),
                    ("square", "Square"),
                    ("landscape", "Landscape"),
                    ("wide", "Wide"),
                    ("tall", "Story"),
                    ("portrait_4_5", "Social"),
                    ("portrait_3_4", "Classic"),
                    ("original", "Same as the photo"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
