"""Catalog entries for upscaling and animating a photo (the preview renderer's and Replicate's),
and how many results per job the image models that can make several offer.

Replicate's inputs as their pages document them: nightmareai/real-esrgan takes `image`, `scale`
(0 to 10) and `face_enhance`, and answers one URL; bytedance/seedance-1-lite takes `image` (the
first frame: image-to-video), `prompt`, `duration` and `resolution`, ignores `aspect_ratio` when
an image is given, and answers one URL; black-forest-labs/flux-schnell takes `num_outputs` (1 to 4).
Idempotent (update_or_create by key); staff change prices and models in the admin afterwards."""

from decimal import Decimal

from django.db import migrations

# The shape of the photo: nothing to send (these models keep the picture's own shape).
ORIGINAL = {"original": ""}
REAL_ESRGAN = "nightmareai/real-esrgan:42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b"

CATALOG = [
    {
        "key": "local-upscale-2x",
        "name": "Preview upscaler ×2",
        "description": "Makes the picture twice as large on our own servers, by resizing. Not AI.",
        "kind": "upscale",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 200,
        "timeout_seconds": 60,
        "upscale_factor": 2,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {},
        "position": 0,
    },
    {
        "key": "local-upscale-4x",
        "name": "Preview upscaler ×4",
        "description": "Makes the picture four times as large on our own servers, by resizing. Not AI.",
        "kind": "upscale",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 300,
        "timeout_seconds": 60,
        "upscale_factor": 4,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {},
        "position": 1,
    },
    {
        "key": "real-esrgan-2x",
        "name": "Real-ESRGAN ×2",
        "description": "Sharp upscaling that restores fine detail.",
        "kind": "upscale",
        "provider": "replicate",
        "provider_ref": REAL_ESRGAN,
        "credit_cost": 200,
        "timeout_seconds": 300,
        "upscale_factor": 2,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {"face_enhance": False},
        "position": 10,
        "provider_usd_per_second": Decimal("0.000225"),
    },
    {
        "key": "real-esrgan-4x",
        "name": "Real-ESRGAN ×4",
        "description": "Sharp upscaling that restores fine detail.",
        "kind": "upscale",
        "provider": "replicate",
        "provider_ref": REAL_ESRGAN,
        "credit_cost": 300,
        "timeout_seconds": 300,
        "upscale_factor": 4,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {"face_enhance": False},
        "position": 11,
        "provider_usd_per_second": Decimal("0.000225"),
    },
    {
        "key": "local-animate-3s",
        "name": "Preview animation · 3 s",
        "description": "A slow camera move over your picture, made on our own servers. Not AI.",
        "kind": "animate",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 2000,
        "timeout_seconds": 120,
        "duration_seconds": 3,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {},
        "position": 0,
    },
    {
        "key": "local-animate-5s",
        "name": "Preview animation · 5 s",
        "description": "A slow camera move over your picture, made on our own servers. Not AI.",
        "kind": "animate",
        "provider": "local",
        "provider_ref": "",
        "credit_cost": 3000,
        "timeout_seconds": 120,
        "duration_seconds": 5,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {},
        "position": 1,
    },
    {
        "key": "seedance-lite-i2v-3s",
        "name": "Seedance 1 Lite · 3 s",
        "description": "ByteDance's image-to-video model: your picture as the first frame, 480p.",
        "kind": "animate",
        "provider": "replicate",
        "provider_ref": "bytedance/seedance-1-lite",
        "credit_cost": 2000,
        "timeout_seconds": 600,
        "duration_seconds": 3,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {"resolution": "480p"},
        "position": 10,
        "provider_usd_per_run": Decimal("0.11"),
    },
    {
        "key": "seedance-lite-i2v-5s",
        "name": "Seedance 1 Lite · 5 s",
        "description": "ByteDance's image-to-video model: your picture as the first frame, 480p.",
        "kind": "animate",
        "provider": "replicate",
        "provider_ref": "bytedance/seedance-1-lite",
        "credit_cost": 3000,
        "timeout_seconds": 600,
        "duration_seconds": 5,
        "image_input": "image",
        "aspect_ratios": ORIGINAL,
        "input_defaults": {"resolution": "480p"},
        "position": 11,
        "provider_usd_per_run": Decimal("0.18"),
    },
]

# Models that make several pictures in one prediction (the preview renderer draws them itself).
MAX_OUTPUTS = {"local-preview": 4, "flux-schnell": 4}


def seed(apps, schema_editor):
    AIModel = apps.get_model("generation", "AIModel")
    for entry in CATALOG:
        AIModel.objects.update_or_create(key=entry["key"], defaults=entry)
    for key, count in MAX_OUTPUTS.items():
        AIModel.objects.filter(key=key).update(max_outputs=count)


class Migration(migrations.Migration):
    dependencies = [("generation", "0018_derived_jobs_index")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
