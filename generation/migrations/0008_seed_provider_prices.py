"""Replicate's published prices for the seeded models, for spend estimates (staff keep them current)."""

from decimal import Decimal

from django.db import migrations

PRICES = {
    "flux-schnell": {"provider_usd_per_run": Decimal("0.003")},
    "flux-1-1-pro": {"provider_usd_per_run": Decimal("0.04")},
    "flux-kontext-pro": {"provider_usd_per_run": Decimal("0.04")},
    "seedance-lite-3s": {"provider_usd_per_run": Decimal("0.11")},
    "seedance-lite-5s": {"provider_usd_per_run": Decimal("0.18")},
}


def seed(apps, schema_editor):
    AIModel = apps.get_model("generation", "AIModel")
    for key, prices in PRICES.items():
        AIModel.objects.filter(key=key).update(**prices)


class Migration(migrations.Migration):
    dependencies = [("generation", "0007_alerts_and_provider_prices")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
