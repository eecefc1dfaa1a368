from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from billing.services import balance_of, signup_bonus_grant

DEMO_EMAIL = "demo@dreampixel.local"
DEMO_PASSWORD = "dreampixel-demo"  # noqa: S105 (public on purpose: local demo only)
STAFF_EMAIL = "staff@dreampixel.local"
STAFF_PASSWORD = "dreampixel-staff"  # noqa: S105 (public on purpose: local demo only)


class Command(BaseCommand):
    help = (
        "Create (or reset) the local demo accounts and print how to sign in: a creator with a "
        "verified email address and signup credits, and a staff superuser with an authenticator "
        "(its TOTP secret is printed, to add to an authenticator app). For development only: "
        "the passwords are public, so it refuses to run in production."
    )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_account makes accounts with public passwords: not in production.")
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
        secret = self._staff()
        self.stdout.write(
            self.style.SUCCESS(
                f"Staff account: {STAFF_EMAIL} / password {STAFF_PASSWORD} at /admin/; authenticator (TOTP) "
                f"secret {secret}\n  add it to an authenticator app, or open: "
                f"otpauth://totp/Dream%20Pixel:{STAFF_EMAIL}?secret={secret}&issuer=Dream%20Pixel"
            )
        )

    def _staff(self) -> str:
        staff, _ = User.objects.get_or_create(email=STAFF_EMAIL, defaults={"name": "Demo Staff"})
        staff.set_password(STAFF_PASSWORD)
        staff.is_active = staff.is_staff = staff.is_superuser = True
        staff.save()
        EmailAddress.objects.update_or_create(
            user=staff, email=STAFF_EMAIL, defaults={"verified": True, "primary": True}
        )
        # The same secret on every run, so the app it was added to keeps working.
        existing = Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).first()
        if existing is not None:
            return get_mfa_adapter().decrypt(existing.data["secret"])
        secret = generate_totp_secret()
        TOTP.activate(staff, secret)
        return secret
