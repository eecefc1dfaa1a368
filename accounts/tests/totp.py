"""The code an authenticator app shows, for the tests that sign staff in."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

STEP = 30  # seconds: allauth's TOTP period, with no step of drift allowed either way


def authenticator_code(secret: str, *, margin: float = 3) -> str:
    """The code for the current step. With less than `margin` seconds of the step left it waits
    for the next step's: a busy machine must not carry the code past its step before the site
    checks it (a browser, which types and clicks first, wants a wider margin)."""
    left = STEP - time.time() % STEP
    if left < margin:
        time.sleep(left + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // STEP))
