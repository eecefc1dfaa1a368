"""django-q2 tasks of the site's operations, run on the schedules of operations/schedules.py."""

from __future__ import annotations

from operations.alerts import alerts_check
from operations.cleanup import cleanup_run
from operations.heartbeat import heartbeat_ping


def cleanup() -> dict[str, int]:
    return {part.name: part.count for part in cleanup_run(dry_run=False)}


def check_alerts() -> list[str]:
    return [alert.key for alert in alerts_check()]


def ping_heartbeat_url() -> bool:
    # Every minute, while the scheduler and a worker run: its silence is the alert.
    return heartbeat_ping()


def cluster_heartbeat() -> None:
    # Nothing to do: finishing is the point. The supervisor enqueues it while its cluster is
    # idle, and the cluster's monitor records each finished task (operations/supervisor.py).
    return None
