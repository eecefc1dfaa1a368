"""Sign in with Google through allauth's real views; only Google's HTTP endpoints are faked."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import jwt
import responses

CLIENT_ID = "dreampixel-test.apps.googleusercontent.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
USERINFO_URL = "https://www.googleapis.com/oauth2/v2/userinfo"


def google_settings(settings) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            **settings.SOCIALACCOUNT_PROVIDERS["google"],
            "APPS": [{"client_id": CLIENT_ID, "secret": "test-secret", "key": ""}],
        }
    }
    settings.GOOGLE_LOGIN_ENABLED = True


def google_sign_in(
    client,
    *,
    sub: str,
    email: str,
    name: str = "",
    email_verified: bool = True,
    audience: str = CLIENT_ID,
    state: str | None = None,
):
    """Start the Google login, then come back to the callback as Google would."""
    start = client.post("/accounts/google/login/", {"process": "login"})
    assert start.status_code == 302, start
    location = urlparse(start["Location"])
    assert location.netloc == "accounts.google.com"
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "sub": sub,
        "email": email,
        "email_verified": email_verified,
        "name": name,
        "given_name": name.split(" ")[0] if name else "",
        "family_name": " ".join(name.split(" ")[1:]),
        "iat": now,
        "exp": now + 600,
    }
    # Tokens that come straight from Google's token endpoint have their claims checked, not
    # their signature (OpenID Connect Core 3.1.3.7), so any key signs them here.
    id_token = jwt.encode(claims, "google-signs-these-for-real-with-rsa-keys", algorithm="HS256")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as google:
        token = {"access_token": "ya29.t", "expires_in": 3599, "token_type": "Bearer", "id_token": id_token}
        google.post(TOKEN_URL, json=token)
        userinfo = {"id": sub, "email": email, "verified_email": email_verified, "name": name}
        google.get(USERINFO_URL, json=userinfo)
        return client.get(
            "/accounts/google/login/callback/",
            {"code": "4/test-code", "state": state or query["state"][0]},
        )
