"""The staff's second-factor secrets at rest: encrypted with keys from the environment.

allauth stores each TOTP secret and recovery-code seed in `mfa_authenticator.data` and passes it
through its adapter's `encrypt`/`decrypt` (accounts.adapters.MFAAdapter calls these). Without
them a read of the database (a backup, a replica, one injected SELECT) gave every staff member's
codes. Fernet (AES-128-CBC with an HMAC) from `cryptography`; `MFA_ENCRYPTION_KEYS` lists the
keys, newest first: the first encrypts, any of them decrypts, so a key is rotated by putting a
new one in front, running `manage.py mfa_reencrypt`, then removing the old one (docs/runbook.md).
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

# Marks an encrypted value, so that one stored in plain text before is told apart (and refused).
PREFIX = "fernet:"
# Which parts of an authenticator's data are secrets, by its type (allauth's names).
SECRET_FIELDS = {"totp": ("secret",), "recovery_codes": ("seed", "migrated_codes")}


class MFASecretUnreadable(Exception):
    """A stored secret that none of the keys opens, or one stored in plain text: never guessed at."""


@functools.cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _keys() -> MultiFernet:
    return _fernet(tuple(settings.MFA_ENCRYPTION_KEYS))


def secret_encrypt(text: str) -> str:
    return PREFIX + _keys().encrypt(text.encode()).decode()


def secret_decrypt(value: str) -> str:
    if not value.startswith(PREFIX):
        # Refused rather than used: accepting plain text would let a database write plant a known secret.
        raise MFASecretUnreadable("A second-factor secret is stored in plain text: run `manage.py migrate`.")
    try:
        return _keys().decrypt(value.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise MFASecretUnreadable(
            "A second-factor secret opens with none of MFA_ENCRYPTION_KEYS: the key it was encrypted with "
            "is missing (keep the old key listed until `manage.py mfa_reencrypt` has run)."
        ) from None


def _encrypted(value: str, *, rotate: bool) -> str:
    if not value.startswith(PREFIX):
        return secret_encrypt(value)
    if not rotate:
        return value
    # MultiFernet.rotate: decrypted with any of the keys, encrypted again with the first.
    return PREFIX + _keys().rotate(value.removeprefix(PREFIX).encode()).decode()


def data_encrypt(kind: str, data: dict[str, Any], *, rotate: bool = False) -> dict[str, Any]:
    """An authenticator's data with every secret encrypted: a value stored in plain text is
    encrypted; with `rotate`, one already encrypted is encrypted again under the newest key."""
    data = dict(data)
    for field in SECRET_FIELDS.get(kind, ()):
        value = data.get(field)
        if isinstance(value, str):
            data[field] = _encrypted(value, rotate=rotate)
        elif isinstance(value, list):
            data[field] = [_encrypted(item, rotate=rotate) for item in value]
    return data


def authenticators_encrypt(authenticator_model: Any, *, rotate: bool = False) -> int:
    """Encrypt every stored secret (with `rotate`, under the newest key), row by row under its
    row lock; returns how many rows changed. `authenticator_model` is allauth's, or a migration's."""
    changed = 0
    ids = list(authenticator_model.objects.filter(type__in=SECRET_FIELDS).values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            row = authenticator_model.objects.select_for_update().filter(pk=pk).first()
            if row is None:
                continue
            data = data_encrypt(row.type, row.data, rotate=rotate)
            if data != row.data:
                authenticator_model.objects.filter(pk=pk).update(data=data)
                changed += 1
    return changed
