"""What this node needs, checked one part at a time: for `/readyz` (the load balancer), the deep
check `/readyz/deep` and `/metrics` (monitoring).

A node can serve pages with the database and its static files: signed-in pages read sessions
from the database while Redis is down (core/sessions.py), and what needs Redis answers a 503
page of its own (core/outages.py). So the load balancer's check covers only those two, and a
Redis outage degrades every node instead of taking them all out of rotation. The cache, the
queue and the file storage are the deep check's and the metrics' to report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django_q.brokers import get_broker

from core.storages import storage_is_s3

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_static_files() -> None:
    # The manifest is read once, when the process starts: without it every page that names a
    # static file fails ("Missing staticfiles manifest entry"), so this node must not serve.
    # With DEBUG on, the storage names files as they are and needs no manifest.
    storage = staticfiles_storage
    if not settings.DEBUG and isinstance(storage, ManifestFilesMixin) and not storage.hashed_files:
        raise RuntimeError("no static files manifest: run collectstatic before starting the web process")


def check_cache() -> None:
    cache.set("readyz", "ok", 10)
    if cache.get("readyz") != "ok":
        raise RuntimeError("cache did not return what was written")


def check_queue() -> None:
    get_broker().queue_size()


def check_storage() -> None:
    if storage_is_s3(default_storage):
        # A missing object is not an error for S3, a missing bucket or bad credentials are.
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    else:
        default_storage.exists("readyz")


# What the load balancer asks about: without these this node cannot serve pages.
SERVING: dict[str, Callable[[], None]] = {"database": check_database, "static_files": check_static_files}
# What monitoring asks about as well: without these the site is degraded, not down.
DEPENDENCIES: dict[str, Callable[[], None]] = {"cache": check_cache, "queue": check_queue, "storage": check_storage}


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""

    def as_dict(self) -> dict:
        result: dict = {"ok": self.ok, "ms": round(self.seconds * 1000, 1)}
        if not self.ok:
            result["error"] = self.error
        return result


def checks_run(checks: dict[str, Callable[[], None]]) -> list[CheckResult]:
    results = []
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "not available"; the kind of error is enough here
            logger.warning("health: %s is unavailable: %r", name, exc)
            results.append(CheckResult(name, False, time.perf_counter() - started, type(exc).__name__))
        else:
            results.append(CheckResult(name, True, time.perf_counter() - started))
    return results
