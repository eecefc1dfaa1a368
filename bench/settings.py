"""The project's settings, as the benchmarks run them.

Two changes, neither on a measured path: the URLconf adds the minimal baseline view of
bench/web.py (bench/urls_web.py), and static files. web.py runs collectstatic into a temporary
directory and points BENCH_STATIC_ROOT at it, so pages use the production storage (whitenoise's
compressed manifest); the other benchmarks serve no pages and use the plain storage, which
needs no collectstatic (with DEBUG off, the manifest storage refuses to start without one).
"""

from __future__ import annotations

import os
from pathlib import Path

from dreampixel.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_web"
if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])
else:
    STORAGES = {
        **STORAGES,  # noqa: F405
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
