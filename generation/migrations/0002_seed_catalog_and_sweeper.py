"""Seed the catalog with the local preview renderer and real Replicate models, and schedule
the stuck-job sweeper. Both are idempotent (update_or_create by key / name)."""

from django.db import migrations

RATIOS = {"portrait": "2:3", "square": "1:1", "landscape": "3:2"}

CATALOG = [
    {
        "key": "local-preview",
        "name": "Preview renderer",
        "description": "Draws a quick preview on our own servers. Not AI: for trying things out.",
        "kind": "image",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 500,
        "timeout_seconds": 60,
        "aspect_ratios": RATIOS,
        "input_defaults": {},
        "position": 0,
    },
    {
        "key": "flux-schnell",
        "name": "FLUX.1 schnell",
        "description": "Fast, sharp text-to-image by Black Forest Labs.",
        "kind": "image",
        "provider": "replicate",
        "provider_ref": "black-forest-labs/flux-schnell",
        "credit_cost": 500,
        "timeout_seconds": 120,
        "aspect_ratios": RATIOS,
        "input_defaults": {"output_format": "png", "num_outputs": 1},
        "position": 10,
    },
    {
        "key": "flux-1-1-pro",
        "name": "FLUX 1.1 pro",
        "description": "Black Forest Labs' high-quality model: better detail and prompt following.",
        "kind": "image",
        "provider": "replicate",
        "provider_ref": "black-forest-labs/flux-1.1-pro",
        "credit_cost": 500,
        "timeout_seconds": 180,
        "aspect_ratios": RATIOS,
        "input_defaults": {"output_format": "png"},
        "position": 20,
    },
    {
        "key": "flux-kontext-pro",
        "name": "FLUX.1 Kontext pro",
        "description": "Edits your photo from a sentence: change the style, the light, an object.",
        "kind": "image_edit",
        "provider": "replicate",
        "provider_ref": "black-forest-labs/flux-kontext-pro",
        "credit_cost": 1000,
        "timeout_seconds": 180,
        "aspect_ratios": RATIOS,
        "input_defaults": {"output_format": "png"},
        "position": 10,
    },
]


def seed(apps, schema_editor):
    AIModel = apps.get_model("generation", "AIModel")
    for entry in CATALOG:
        AIModel.objects.update_or_create(key=entry["key"], defaults=entry)
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="generation: sweep stuck jobs",
        defaults={"func": "generation.tasks.sweep_stuck_jobs", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def unseed(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="generation: sweep stuck jobs").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0001_jobs"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
