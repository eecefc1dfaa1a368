"""The worker process: `qcluster` under a supervisor that restarts it when it stalls."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from operations.models import WorkerCluster
from operations.selectors import worker_cluster_problems, worker_clusters
from operations.supervisor import Supervisor, default_name


class Command(BaseCommand):
    help = (
        "Run `manage.py qcluster` as a child process and keep it working: when no task has "
        "finished for --stall-seconds although the queue is reachable (a wedged cluster, e.g. "
        "after a worker was killed), or when it exits, the cluster is stopped (SIGKILL after "
        "--restart-grace) and started again. SIGTERM stops it within --stop-grace and exits. "
        "Tasks the stopped cluster had taken from Redis are handed back to the queue at once. "
        "Each cluster's last heartbeat, tasks done and restarts show on the admin home; "
        "--status prints them (--json as JSON) and exits with 1 when no cluster is working or "
        "one stopped working without being stopped (no heartbeat for --stall-seconds, or no word "
        "from its supervisor for two minutes), so a monitor can run it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name", default=default_name(), help="This cluster's name (default: $WORKER_NAME, $DYNO or host:pid)."
        )
        parser.add_argument(
            "--stall-seconds",
            type=float,
            default=settings.QCLUSTER_STALL_SECONDS,
            help="Restart the cluster when no task finished for this long although the queue took its "
            "heartbeats (default: QCLUSTER_STALL_SECONDS, %(default)s).",
        )
        parser.add_argument(
            "--heartbeat-seconds",
            type=float,
            default=settings.QCLUSTER_HEARTBEAT_SECONDS,
            help="Send an idle cluster a no-op task this often (default: QCLUSTER_HEARTBEAT_SECONDS, %(default)s).",
        )
        parser.add_argument(
            "--stop-grace",
            type=float,
            default=settings.QCLUSTER_STOP_GRACE_SECONDS,
            help="On SIGTERM, let the cluster finish its tasks this long, then kill it "
            "(default: QCLUSTER_STOP_GRACE_SECONDS, %(default)s).",
        )
        parser.add_argument(
            "--restart-grace", type=float, default=settings.QCLUSTER_RESTART_GRACE_SECONDS,
            help="Kill a stalled cluster this long after asking it to stop "
            "(default: QCLUSTER_RESTART_GRACE_SECONDS, %(default)s).",
        )  # fmt: skip
        parser.add_argument(
            "--status",
            action="store_true",
            help="Print every supervised cluster seen in the last day and exit: 0 when one works and "
            "none is stale, 1 otherwise.",
        )
        parser.add_argument("--json", action="store_true", help="With --status: print it as JSON.")

    def handle(self, *args, **options) -> None:
        if options["status"]:
            self._print_status(as_json=options["json"])
            return
        Supervisor(
            name=options["name"],
            stall_seconds=options["stall_seconds"],
            heartbeat_seconds=options["heartbeat_seconds"],
            stop_grace_seconds=options["stop_grace"],
            restart_grace_seconds=options["restart_grace"],
        ).run()

    def _print_status(self, *, as_json: bool) -> None:
        clusters = worker_clusters()
        problems = worker_cluster_problems(clusters)
        now = timezone.now()
        if as_json:
            report = {"ok": not problems, "problems": problems, "clusters": [_as_dict(c, now) for c in clusters]}
            self.stdout.write(json.dumps(report, indent=2))
            if problems:
                raise SystemExit(1)
            return
        if not clusters:
            self.stdout.write("No supervised cluster has reported yet.")
        for cluster in clusters:
            beat = (
                f"{(now - cluster.last_heartbeat_at).total_seconds():.0f} s ago"
                if cluster.last_heartbeat_at
                else "never"
            )
            self.stdout.write(
                f"{cluster.name}: {cluster.state}; last heartbeat {beat}; {cluster.tasks_done} tasks done; "
                f"{cluster.restarts} restarts" + (f" (last: {cluster.last_restart_reason})" if cluster.restarts else "")
            )
        if problems:
            raise CommandError("; ".join(problems), returncode=1)


def _as_dict(cluster: WorkerCluster, now) -> dict:
    def when(value):
        return value.isoformat() if value else None

    return {
        "name": cluster.name,
        "host": cluster.host,
        "state": cluster.state,
        "last_heartbeat_at": when(cluster.last_heartbeat_at),
        "heartbeat_age_seconds": round((now - cluster.last_heartbeat_at).total_seconds(), 1)
        if cluster.last_heartbeat_at
        else None,
        "tasks_done": cluster.tasks_done,
        "restarts": cluster.restarts,
        "last_restart_at": when(cluster.last_restart_at),
        "last_restart_reason": cluster.last_restart_reason,
        "started_at": when(cluster.started_at),
        "seen_at": when(cluster.seen_at),
        "stopped_at": when(cluster.stopped_at),
    }
