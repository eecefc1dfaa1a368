"""Catalog entries for photo edits and videos: the local preview renderer's and Replicate's."""

from django.db import migrations

VIDEO_RATIOS = {"portrait": "9:16", "square": "1:1", "landscape": "16:9"}

CATALOG = [
    {
        "key": "local-edit",
        "name": "Preview editor",
        "description": "Restyles your photo on our own servers. Not AI: for trying things out.",
        "kind": "image_edit",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 1000,
        "timeout_seconds": 60,
        "aspect_ratios": {"original": "original"},
        "input_defaults": {},
        "position": 0,
    },
    {
        "key": "local-video-3s",
        "name": "Preview video · 3 s",
        "description": "A short animated preview made on our own servers. Not AI.",
        "kind": "video",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 2000,
        "timeout_seconds": 120,
        "duration_seconds": 3,
        "aspect_ratios": VIDEO_RATIOS,
        "input_defaults": {},
        "position": 0,
    },
    {
        "key": "local-video-5s",
        "name": "Preview video · 5 s",
        "description": "A short animated preview made on our own servers. Not AI.",
        "kind": "video",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 3000,
        "timeout_seconds": 120,
        "duration_seconds": 5,
        "aspect_ratios": VIDEO_RATIOS,
        "input_defaults": {},
        "position": 1,
    },
    {
        "key": "seedance-lite-3s",
        "name": "Seedance 1 Lite · 3 s",
        "description": "ByteDance's text-to-video model, 480p.",
        "kind": "video",
        "provider": "replicate",
        "provider_ref": "bytedance/seedance-1-lite",
        "credit_cost": 2000,
        "timeout_seconds": 600,
        "duration_seconds": 3,
        "aspect_ratios": VIDEO_RATIOS,
        "input_defaults": {"resolution": "480p"},
        "position": 10,
    },
    {
        "key": "seedance-lite-5s",
        "name": "Seedance 1 Lite · 5 s",
        "description": "ByteDance's text-to-video model, 480p.",
        "kind": "video",
        "provider": "replicate",
        "provider_ref": "bytedance/seedance-1-lite",
        "credit_cost": 3000,
        "timeout_seconds": 600,
        "duration_seconds": 5,
        "aspect_ratios": VIDEO_RATIOS,
        "input_defaults": {"resolution": "480p"},
        "position": 11,
    },
]


def seed(apps, schema_editor):
    AIModel = apps.get_model("generation", "AIModel")
    for entry in CATALOG:
        AIModel.objects.update_or_create(key=entry["key"], defaults=entry)
    # Kontext keeps the photo's own shape.
    AIModel.objects.filter(key="flux-kontext-pro").update(aspect_ratios={"original": "match_input_image"})
    apps.get_model("generation", "SiteSettings").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("generation", "0003_edits_batches_video_sharing")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
