from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@contextmanager
def database_unreachable():
    # Point the live connection at a port where nothing listens: a real failed connect.
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


TOKEN = "a-monitoring-token-of-at-least-32-chars"


@pytest.fixture
def monitoring(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


def test_readyz_asks_only_what_this_node_needs_to_serve_pages(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "static_files"}
    assert all(check["ok"] for check in body["checks"].values())


# Transactional: the unreachable database closes the test's connection, and its transaction with it.
@pytest.mark.django_db(transaction=True)
def test_readyz_names_the_database_when_it_is_down(client):
    with database_unreachable():
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]


def test_readyz_fails_on_a_node_started_without_its_static_files(client, settings, tmp_path):
    # Production's storage with an empty STATIC_ROOT: every page naming a static file would fail.
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["static_files"]


def test_a_redis_outage_keeps_the_node_ready_and_the_deep_check_names_it(client, redis_down, monitoring):
    # The load balancer keeps every node: their pages still work from the database.
    assert client.get("/readyz").status_code == 200
    response = client.get("/readyz/deep", **monitoring)
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["cache"]
    assert body["checks"]["cache"]["error"] == "ConnectionError"
    assert set(body["checks"]) == {"database", "static_files", "cache", "queue", "storage"}


def test_the_deep_check_is_ok_on_a_real_redis_cache(client, redis_cache, monitoring):
    response = client.get("/readyz/deep", **monitoring)
    assert response.status_code == 200
    assert response.json()["checks"]["cache"]["ok"]


MANIFEST_STORAGE = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}


def test_readyz_names_the_static_manifest_when_collectstatic_never_ran(client, settings, tmp_path):
    # Production's storage with an empty STATIC_ROOT: every page would answer 500.
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": MANIFEST_STORAGE}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["static_files"]


def test_readyz_is_ok_once_the_static_files_are_collected(client, settings, tmp_path):
    from django.core.management import call_command

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": MANIFEST_STORAGE}
    call_command("collectstatic", "--noinput", verbosity=0)
    settings.STORAGES = {**settings.STORAGES}  # a new process: the storage reads the manifest again
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["static_files"]["ok"]


def test_the_deep_check_is_not_public(client, settings, monitoring):
    assert client.get("/readyz/deep").status_code == 403
    assert client.get("/readyz/deep", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    settings.METRICS_TOKEN = ""
    assert client.get("/readyz/deep", **monitoring).status_code == 404  # off: nothing configured
