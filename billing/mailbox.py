"""One mailbox, however it is written: the key the signup bonus is claimed under."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.utils.crypto import salted_hmac

from core.addresses import UnsafeAddress, email_canonical

# Google ignores dots in the local part of its own addresses; googlemail.com is the same mailbox.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_normalize(email: str) -> str:
    """The address in its one spelling (core.addresses: Unicode, IDNA, quotes, case, a trailing
    dot), then without a +tag, and for Gmail without dots: name+1@x.com is name@x.com."""
    try:
        email = email_canonical(email)
    except UnsafeAddress:
        # Only an address stored before the sign-up forms refused such spellings: fold what can be.
        email = unicodedata.normalize("NFKC", email.strip()).casefold()
    local, _, domain = email.rpartition("@")
    domain = domain.rstrip(".")
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def mailbox_hash(email: str) -> str:
    # Keyed: without MAILBOX_HASH_KEY (or SECRET_KEY) a list of addresses cannot be tested against it.
    secret = settings.MAILBOX_HASH_KEY or settings.SECRET_KEY
    return salted_hmac(
        "dreampixel.signup-mailbox", mailbox_normalize(email), secret=secret, algorithm="sha256"
    ).hexdigest()
