"""gunicorn's settings beyond the Procfile's command line: metrics counted across its worker
processes, and its log lines in the application's JSON with each request's id."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.logging import log_context_clear

# Before any worker imports prometheus-client: each worker then keeps its counts in a file of this
# folder, and /metrics adds them all up (core/metrics.py). A fresh folder per start unless set.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="dreampixel-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

logger_class = "core.access_log.Logger"


def on_starting(server) -> None:
    # Counts left by an earlier run in a folder that was set would be added to this one's.
    for leftover in Path(_metrics_dir).glob("*.db"):
        leftover.unlink()


def pre_request(worker, req) -> None:
    log_context_clear()


def child_exit(server, worker) -> None:
    # Imported here, not above: prometheus-client reads PROMETHEUS_MULTIPROC_DIR when imported.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)
