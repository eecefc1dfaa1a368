from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.core.management.base import BaseCommand

from accounts.mfa import authenticators_encrypt


class Command(BaseCommand):
    help = (
        "Encrypt every stored second-factor secret (TOTP secrets, recovery-code seeds) again under "
        "the first key of MFA_ENCRYPTION_KEYS. To rotate the key: put a new key first, keeping the "
        "old one after it, deploy, run this command, then remove the old key. Safe to run again: "
        "each run re-encrypts every secret under the first key."
    )

    def handle(self, *args, **options):
        changed = authenticators_encrypt(Authenticator, rotate=True)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {changed} authenticator(s)."))
