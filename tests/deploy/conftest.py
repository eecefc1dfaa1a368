"""What a deployment test brings up around the site: its own database, a real S3 endpoint, a real
SMTP server, and the production settings pointing at them (the way an operator's environment
would)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings

from tests.deploy.journey import Mailbox
from tests.pg import conninfo
from tests.production import production_secrets
from tests.redis_keys import new_prefix
from tests.s3 import local_s3, new_bucket


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the suite's server; its URL. Dropped afterwards."""
    db = settings.DATABASES["default"]
    name = f"{db['NAME']}_deploy_{uuid.uuid4().hex[:8]}"[:63]
    admin = conninfo({**db, "NAME": "postgres"})
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    try:
        yield f"postgres://{quote(db['USER'], safe='')}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def s3_bucket():
    """A real S3 API on loopback (moto's server) with an empty bucket: the settings that reach it."""
    with local_s3() as (endpoint, client):
        yield {
            "AWS_STORAGE_BUCKET_NAME": new_bucket(client),
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }


@pytest.fixture
def mailbox():
    with Mailbox().running() as box:
        yield box


@pytest.fixture
def production_env(scratch_database, s3_bucket, mailbox, redis_url) -> dict[str, str]:
    """Production settings for one deployment under test (its own queue name and cache key prefix
    on the shared Redis: their keys are deleted when the test ends)."""
    keys = new_prefix(redis_url)
    return {
        "DREAMPIXEL_ENV": "production",
        "SECRET_KEY": "deploy-test-" + uuid.uuid4().hex + "-with-enough-variety-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": scratch_database,
        "REDIS_URL": redis_url,
        "Q_CLUSTER_NAME": keys,
        "CACHE_KEY_PREFIX": keys,
        "Q_WORKERS": "1",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
        **s3_bucket,
        **mailbox.settings(),
        # What monitoring reads /metrics and /readyz/deep with.
        "METRICS_TOKEN": "deploy-test-metrics-" + uuid.uuid4().hex,
        **production_secrets(),
    }
