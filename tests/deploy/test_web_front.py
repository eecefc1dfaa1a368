"""The web process's own nginx (deploy/web.py) changes nothing the app decides by: who the
client is, and whether the request came over HTTPS. Driven from outside, through the Procfile's
`web` line, with real sockets."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings

from tests.procfile import procfile_web
from tests.production import production_secrets
from tests.redis_keys import new_prefix

pytestmark = pytest.mark.django_db


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _production(redis_url: str, **extra: str) -> dict[str, str]:
    keys = new_prefix(redis_url)
    return {
        "DREAMPIXEL_ENV": "production",
        "SECRET_KEY": "front-test-" + "k" * 30 + "-with-enough-variety-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": keys,
        "Q_CLUSTER_NAME": keys,
        "EMAIL_HOST": "smtp.example.com",
        "WEB_CONCURRENCY": "1",
        **production_secrets(),
        **extra,
    }


@pytest.mark.parametrize(
    ("forwarded_allow_ips", "answer"),
    [("127.0.0.1,::1", 200), ("10.0.0.0/8", 301), ("*", 200)],
    ids=["from-a-trusted-proxy", "from-anyone-else", "from-anyone-behind-a-router"],
)
def test_a_forwarded_https_is_believed_only_from_forwarded_allow_ips(forwarded_allow_ips, answer, redis_url):
    with procfile_web(_production(redis_url, FORWARDED_ALLOW_IPS=forwarded_allow_ips)) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == answer
    if answer == 301:  # production sends plain HTTP to HTTPS
        assert response.headers["Location"].startswith("https://")


def test_rate_limits_count_each_client_behind_the_front_on_its_own():
    # One load balancer in front (TRUSTED_PROXY_COUNT=1): the client is the address it appended.
    env = {
        "DREAMPIXEL_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": _database_url(),
        "WEB_CONCURRENCY": "1",  # the development cache counts per process
        "TRUSTED_PROXY_COUNT": "1",
    }
    with procfile_web(env) as port:

        def sign_in_attempt(client_address: str) -> int:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Forwarded-For": client_address}) as c:
                page = c.get("/accounts/login/")
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
                data = {"csrfmiddlewaretoken": token, "login": "nobody@example.com", "password": "wrong"}
                return c.post("/accounts/login/", data=data).status_code

        first_client = [sign_in_attempt("198.51.100.7") for _ in range(11)]
        if 429 not in first_client:
            # The limit counts in fixed minute windows, each address's starting at a second of its
            # own: a burst that straddled two of them is tried once more from a fresh address
            # (a second turn within the same minute cannot happen).
            first_client = [sign_in_attempt("198.51.100.9") for _ in range(11)]
        other_client = sign_in_attempt("198.51.100.8")
    assert first_client[:10] == [200] * 10
    assert first_client[10] == 429  # RATELIMIT_LOGIN: 10 a minute per client address
    assert other_client == 200  # another address, its own count
