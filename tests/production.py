"""What production refuses to start without, besides the settings each test names: the Content
Credentials signer (a certificate issued by a certificate authority, made up here as an
operator's would be) and the key that encrypts the staff's second-factor secrets."""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet

from core.signing import certificate_pair


@cache
def production_secrets() -> dict[str, str]:
    chain, key, _root = certificate_pair(organization="Dream Pixel Example Ltd")
    return {
        "C2PA_SIGNING_CERT": chain.decode(),
        "C2PA_SIGNING_KEY": key.decode(),
        "MFA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
