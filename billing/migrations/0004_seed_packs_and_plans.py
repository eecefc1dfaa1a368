"""A starting set of credit packs and monthly plans.

The Stripe price ids are placeholders: create the prices in Stripe (docs/deployment.md,
"Stripe") and paste their ids in the admin. A purchase of a pack whose price id is still a
placeholder fails at Stripe and the buyer is told nothing was charged.
"""

from django.db import migrations

# name, credits, price in cents (USD), placeholder price id, order
PACKS = [
    ("Starter", 5_000, 500, "price_REPLACE_ME_pack_starter", 10),
    ("Creator", 12_000, 1_000, "price_REPLACE_ME_pack_creator", 20),
    ("Studio", 30_000, 2_000, "price_REPLACE_ME_pack_studio", 30),
]
PLANS = [
    ("Plus", 15_000, 1_200, "price_REPLACE_ME_plan_plus", 10),
    ("Pro", 40_000, 2_500, "price_REPLACE_ME_plan_pro", 20),
]


def seed(apps, schema_editor):
    for model_name, rows in (("CreditPack", PACKS), ("Plan", PLANS)):
        model = apps.get_model("billing", model_name)
        for name, credits, price_cents, price_id, order in rows:
            model.objects.get_or_create(
                stripe_price_id=price_id,
                defaults={
                    "name": name,
                    "credits": credits,
                    "price_cents": price_cents,
                    "currency": "usd",
                    "order": order,
                },
            )


def unseed(apps, schema_editor):
    for model_name, rows in (("CreditPack", PACKS), ("Plan", PLANS)):
        apps.get_model("billing", model_name).objects.filter(stripe_price_id__in=[row[3] for row in rows]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_stripe")]

    operations = [migrations.RunPython(seed, unseed)]
