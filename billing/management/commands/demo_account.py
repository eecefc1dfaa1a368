from __future__ import annotations

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand

from accounts.models import User
from billing.services import balance_of, signup_bonus_grant

DEMO_EMAIL = "demo@dreampixel.local"
DEMO_PASSWORD = "dreampixel-demo"  # noqa: S105 (public on purpose: local demo only)


class Command(BaseCommand):
    help = (
        "Create (or reset) the local demo account with a verified email address and its signup "
        "credits, and print how to sign in. For development only: the password is public."
    )

    def handle(self, *args, **options):
        user, created = User.objects.get_or_create(email=DEMO_EMAIL, defaults={"name": "Demo Creator"})
        user.set_password(DEMO_PASSWORD)
        user.is_active = True
        user.save()
        EmailAddress.objects.update_or_create(user=user, email=DEMO_EMAIL, defaults={"verified": True, "primary": True})
        signup_bonus_grant(user=user)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo account {'created' if created else 'ready'}: {DEMO_EMAIL} / password {DEMO_PASSWORD} "
                f"({balance_of(user):,} credits)"
            )
        )
