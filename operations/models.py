"""The state of the site's own machinery: alert emails sent, and the supervised worker clusters."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertState(models.Model):
    """When each kind of alert last emailed staff: at most once an hour per kind."""

    key = models.CharField(max_length=64, unique=True)
    last_sent_at = models.DateTimeField()
    last_message = models.TextField(blank=True)

    class Meta:
        # The table keeps the name it was made with in generation: renaming it would break the
        # release still running while a deploy migrates (docs/deployment.md, migrations).
        db_table = "generation_alertstate"

    def __str__(self) -> str:
        return self.key


class WorkerCluster(models.Model):
    """One supervised `qcluster` (manage.py supervise_qcluster), as its supervisor last saw it.

    Written by the supervisor only (a few times a minute), read by the admin home and the
    runbook. The heartbeat is the last task the cluster finished: only a working cluster
    moves it."""

    name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)  # the supervisor's
    started_at = models.DateTimeField(null=True, blank=True)  # the current qcluster's
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    tasks_done = models.PositiveBigIntegerField(default=0)  # since the supervisor started
    restarts = models.PositiveIntegerField(default=0)
    last_restart_at = models.DateTimeField(null=True, blank=True)
    last_restart_reason = models.CharField(max_length=200, blank=True)
    seen_at = models.DateTimeField(default=timezone.now)  # the supervisor's last write
    stopped_at = models.DateTimeField(null=True, blank=True)

    # Not a column: what operations.selectors.worker_clusters() makes of the fields above ("working", …).
    state: str

    class Meta:
        ordering = ["name"]
        db_table = "generation_workercluster"  # its first name, as AlertState's

    def __str__(self) -> str:
        return self.name


class MetricsTally(models.Model):
    """A running total behind a counter of /metrics, brought up to date by the scrape that finds
    it behind (operations/metrics.py): only what finished, or was written, since it was last
    advanced is read, so a scrape never reads a whole table.

    "jobs": jobs that became final up to `counted_until`, per model and status; "ledger": the sum
    of the ledger's entries up to `counted_until_id`."""

    name = models.CharField(max_length=32, primary_key=True)
    counted_until = models.DateTimeField(null=True, blank=True)
    counted_until_id = models.BigIntegerField(default=0)
    totals = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name
