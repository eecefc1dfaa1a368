"""A fake Google sign-in (OAuth 2.0 / OpenID Connect) on loopback, for a whole sign-in by a real
server: the authorization page, the token endpoint and the userinfo endpoint.

What it reproduces of Google's web-server flow, as django-allauth's Google provider uses it:
- `GET /o/oauth2/v2/auth` (AUTHORIZE_URL) checks the client id and the redirect URI it was
  registered with, "consents" at once as `identity`, and redirects to the redirect URI with a
  one-time `code` and the `state` it was given.
- `POST /token` (ACCESS_TOKEN_URL) takes that code once, with the client's id and secret and the
  same redirect URI, and answers `access_token`, `expires_in`, `token_type` and an `id_token`
  whose claims are Google's (`iss` https://accounts.google.com, `aud` the client id, `sub`,
  `email`, `email_verified`, `name`, `given_name`, `family_name`, `iat`, `exp`). A token fetched straight from the token
  endpoint has its claims checked, not its signature (OpenID Connect Core 3.1.3.7), so it is
  signed with a made-up key here.
- `GET /oauth2/v2/userinfo` (IDENTITY_URL) answers the identity to the access token.
Point allauth at it with SOCIALACCOUNT_PROVIDERS["google"]'s AUTHORIZE_URL, ACCESS_TOKEN_URL and
IDENTITY_URL (`provider_settings()`); allauth reads them when its Google views are imported.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

ISSUER = "https://accounts.google.com"


@dataclass
class Identity:
    sub: str
    email: str
    name: str = ""
    email_verified: bool = True


class FakeGoogle:
    def __init__(self, *, client_id: str, client_secret: str, identity: Identity) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.identity = identity  # who "consents" next; a test may change it between sign-ins
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._codes: dict[str, tuple[Identity, str]] = {}  # code -> (identity, redirect URI)
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def provider_settings(self) -> dict[str, str]:
        """The keys of SOCIALACCOUNT_PROVIDERS["google"] that send allauth here."""
        return {
            "AUTHORIZE_URL": f"{self.url}/o/oauth2/v2/auth",
            "ACCESS_TOKEN_URL": f"{self.url}/token",
            "IDENTITY_URL": f"{self.url}/oauth2/v2/userinfo",
        }

    def __enter__(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._answer(self, "GET")

            def do_POST(self) -> None:
                fake._answer(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = {k: v[0] for k, v in parse_qs(split.query if method == "GET" else body).items()}
        with self._lock:
            self.requests.append((method, split.path))
        status, headers, payload = self._route(method, split.path, params, handler.headers.get("Authorization") or "")
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(
        self, method: str, path: str, params: dict[str, str], authorization: str
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and path == "/o/oauth2/v2/auth":
            if params.get("client_id") != self.client_id or not params.get("redirect_uri"):
                return _json(400, {"error": "invalid_request", "error_description": "Unknown client"})
            code = "4/" + secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = (self.identity, params["redirect_uri"])
            query = urlencode({"code": code, "state": params.get("state", ""), "scope": params.get("scope", "")})
            return 302, {"Location": f"{params['redirect_uri']}?{query}"}, b""
        if method == "POST" and path == "/token":
            with self._lock:
                issued = self._codes.pop(params.get("code", ""), None)  # a code is good once
            if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
                return _json(401, {"error": "invalid_client"})
            if issued is None or issued[1] != params.get("redirect_uri"):
                return _json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            identity = issued[0]
            access_token = "ya29." + secrets.token_urlsafe(24)
            with self._lock:
                self._tokens[access_token] = identity
            now = int(time.time())
            given, _, family = identity.name.partition(" ")
            claims = {
                "iss": ISSUER, "aud": self.client_id, "sub": identity.sub, "email": identity.email,
                "email_verified": identity.email_verified, "name": identity.name, "given_name": given,
                "family_name": family, "iat": now, "exp": now + 3600,
            }  # fmt: skip
            id_token = jwt.encode(claims, "fake-google-signs-with-rsa-keys-for-real", algorithm="HS256")
            answer = {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer", "id_token": id_token}
            return _json(200, answer)
        if method == "GET" and path == "/oauth2/v2/userinfo":
            with self._lock:
                known = self._tokens.get(authorization.removeprefix("Bearer ").strip())
            if known is None:
                return _json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
            return _json(
                200,
                {"id": known.sub, "email": known.email, "verified_email": known.email_verified, "name": known.name},
            )  # fmt: skip
        return _json(404, {"error": "not_found"})


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
