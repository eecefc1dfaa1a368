"""The site's figures for Prometheus, read when it scrapes `/metrics` (any web node answers the
same): jobs, the queue, the workers, money, and whether the parts the site depends on answer.
Each web process's own counts (requests, refused webhooks) come from core/metrics.py.

A scrape's cost follows what it shows, never the size of a table (docs/benchmarks.md measures
it at the scale benchmark's full volume):
- the jobs in flight and the accounts in debt through partial or status indexes;
- the counters of finished jobs, provider spend and the time from a prediction's end to its
  job's end from a running tally (MetricsTally): a scrape adds the jobs finished since the tally
  was last advanced, so it reads a minute of jobs, not a day or a month of them;
- the outstanding credits as the ledger's running sum (entries are never changed, so a stretch
  of ids once added stays added) less what accounts in debt owe;
- the queue, the worker clusters (at most 50) and the last reconcile run by their own small reads.

Counters start when the tally is first made (the first scrape after a deploy): Prometheus' rate()
and increase() read them from then on. Series that every node reports alike carry no node label
of their own: the alert rules take the max over instances (monitoring/alerts.yml).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from billing.metrics import (
    credits_in_debt,
    ledger_id_written_before,
    ledger_sum,
    reconcile_open_findings,
    stripe_events_failing,
)
from core.taskqueue import TrackedRedis, inflight_key, task_of
from generation.metrics import LAG_BUCKETS, jobs_finished_between, jobs_in_flight, oldest_running_since
from operations.health import DEPENDENCIES, SERVING, checks_run
from operations.models import MetricsTally
from operations.selectors import worker_clusters

logger = logging.getLogger(__name__)

# Rows older than this have committed: a job finishing or an entry written commits in
# milliseconds, so a tally advanced only this far behind the clock never misses one.
SETTLED = timedelta(seconds=60)
# A tally is advanced (one short write) at most this often; scrapes between read its tail.
ADVANCE_EVERY = timedelta(seconds=30)
# Ledger ids added per scrape while the ledger's tally catches up with an existing ledger.
LEDGER_CATCH_UP = 1_000_000


# --- the tallies -------------------------------------------------------------------------------


def _tally(name: str, now: datetime) -> MetricsTally:
    tally, _ = MetricsTally.objects.get_or_create(name=name, defaults={"counted_until": now - SETTLED})
    return tally


def _advance(
    tally: MetricsTally, now: datetime, step: Callable[[MetricsTally], None], *, every: timedelta = ADVANCE_EVERY
) -> MetricsTally:
    """Advance the tally with `step` unless it was advanced less than `every` ago or another
    scrape is doing it right now (it is locked, or no longer as we read it): then the tally as it
    is will do."""
    if every and now - tally.updated_at < every:
        return tally
    with transaction.atomic():
        locked = (
            MetricsTally.objects.select_for_update(skip_locked=True)
            .filter(name=tally.name, updated_at=tally.updated_at)
            .first()
        )
        if locked is None:
            return tally
        step(locked)
        locked.updated_at = now
        locked.save()
    return locked


def _add_finished(totals: dict, rows: list[dict]) -> dict:
    merged = {key: dict(value) for key, value in totals.items()}
    for row in rows:
        key = f"{row['model']}\t{row['status']}"
        into = merged.setdefault(key, {"jobs": 0, "usd": 0.0, "lag_le": [0] * len(LAG_BUCKETS), "lag_count": 0,
                                       "lag_sum": 0.0})  # fmt: skip
        into["jobs"] += row["jobs"]
        into["usd"] += row["usd"]
        into["lag_le"] = [a + b for a, b in zip(into["lag_le"], row["lag_le"], strict=True)]
        into["lag_count"] += row["lag_count"]
        into["lag_sum"] += row["lag_sum"]
    return merged


def finished_jobs_totals(now: datetime) -> dict[str, dict]:
    """Jobs that became final since the tally began, per "model<TAB>status": the tally, plus what
    finished after it was last advanced."""

    def step(tally: MetricsTally) -> None:
        assert tally.counted_until is not None  # made with one
        until = max(now - SETTLED, tally.counted_until)  # never backwards (a node whose clock is behind)
        tally.totals = _add_finished(tally.totals, jobs_finished_between(tally.counted_until, until))
        tally.counted_until = until

    tally = _advance(_tally("jobs", now), now, step)
    assert tally.counted_until is not None
    return _add_finished(tally.totals, jobs_finished_between(tally.counted_until, now))


def credits_outstanding(now: datetime) -> int | None:
    """Credits people hold and may still spend (every positive balance): the sum of the ledger,
    which equals the sum of all balances, less the debts of accounts below zero. None while the
    tally is still adding up an existing ledger, a million entries per scrape."""

    def step(tally: MetricsTally) -> None:
        # Never backwards: an entry written later may carry an earlier created_at (rows loaded
        # by hand), and what was added stays added.
        written = max(ledger_id_written_before(now - SETTLED) or 0, tally.counted_until_id)
        until = min(written, tally.counted_until_id + LEDGER_CATCH_UP)
        added, _ = ledger_sum(after_id=tally.counted_until_id, until_id=until)
        tally.totals = {"sum": tally.totals.get("sum", 0) + added, "caught_up": until == written}
        tally.counted_until_id = until

    tally = _tally("ledger", now)
    catching_up = not tally.totals.get("caught_up")
    tally = _advance(tally, now, step, every=timedelta(0) if catching_up else ADVANCE_EVERY)
    if not tally.totals.get("caught_up"):
        return None
    tail, _ = ledger_sum(after_id=tally.counted_until_id)
    return tally.totals["sum"] + tail - credits_in_debt()


# --- the collector -----------------------------------------------------------------------------


class SiteCollector:
    """prometheus-client's custom collector: one pass over the site's figures per scrape. A part
    that cannot be read (the database or Redis down) is left out and reported as such, and the
    rest still shows."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        sections = {
            "dependencies": self._dependencies,
            "jobs": self._jobs,
            "finished": self._finished,
            "queue": self._queue,
            "workers": self._workers,
            "billing": self._billing,
        }
        readable = GaugeMetricFamily(
            "dreampixel_metrics_section_ok", "1 if this part of the scrape could be read, 0 if not.", labels=["section"]
        )
        for name, section in sections.items():
            try:
                families = list(section(now))
            except Exception:
                logger.exception("metrics: the %s could not be read", name)
                readable.add_metric([name], 0)
                continue
            readable.add_metric([name], 1)
            yield from families
        yield readable

    def _dependencies(self, now: datetime) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "dreampixel_dependency_up",
            "1 if this node reaches the part, 0 if not. database and static_files decide /readyz; the "
            "others degrade the site without taking the node out of rotation.",
            labels=["dependency"],
        )
        took = GaugeMetricFamily(
            "dreampixel_dependency_check_seconds", "How long the check took.", labels=["dependency"]
        )
        for result in checks_run({**SERVING, **DEPENDENCIES}):
            up.add_metric([result.name], 1 if result.ok else 0)
            took.add_metric([result.name], result.seconds)
        yield up
        yield took

    def _jobs(self, now: datetime) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "dreampixel_jobs", "Jobs queued or running now, by model and status.", labels=["model", "status"]
        )
        predictions = GaugeMetricFamily(
            "dreampixel_predictions_running", "Running jobs whose prediction is at the provider.", labels=["model"]
        )
        for row in jobs_in_flight():
            jobs.add_metric([row["model__key"], row["status"]], row["jobs"])
            if row["status"] == "running":
                predictions.add_metric([row["model__key"]], row["predictions"])
        oldest = oldest_running_since()
        longest = GaugeMetricFamily(
            "dreampixel_job_longest_running_seconds",
            "How long the job running longest has run (0 when none runs).",
            value=(now - oldest).total_seconds() if oldest else 0,
        )
        yield from (jobs, predictions, longest)
        settings_gauge = GaugeMetricFamily(
            "dreampixel_alert_setting",
            "The thresholds of the product's own alerts (ALERT_* settings), for the alert rules.",
            labels=["setting"],
        )
        settings_gauge.add_metric(["failure_rate"], settings.ALERT_FAILURE_RATE)
        settings_gauge.add_metric(["min_jobs"], settings.ALERT_MIN_JOBS)
        settings_gauge.add_metric(["slow_job_seconds"], settings.ALERT_SLOW_JOB_SECONDS)
        yield settings_gauge
        yield GaugeMetricFamily(
            "dreampixel_provider_budget_usd",
            "DAILY_PROVIDER_BUDGET_USD: the provider spend of 24 hours that raises an alert (0: none).",
            value=settings.DAILY_PROVIDER_BUDGET_USD,
        )

    def _finished(self, now: datetime) -> Iterator[Metric]:
        totals = finished_jobs_totals(now)
        finished = CounterMetricFamily(
            "dreampixel_jobs_finished", "Jobs that became final, by model and status.", labels=["model", "status"]
        )
        spend = CounterMetricFamily(
            "dreampixel_provider_spend_usd",
            "Estimated provider spend of finished jobs (run metrics times the model's prices), in US dollars.",
            labels=["model"],
        )
        spent: dict[str, float] = defaultdict(float)
        lag_le = [0] * len(LAG_BUCKETS)
        lag_count, lag_sum = 0, 0.0
        for key, value in sorted(totals.items()):
            model, status = key.split("\t")
            finished.add_metric([model, status], value["jobs"])
            spent[model] += value["usd"]
            lag_le = [a + b for a, b in zip(lag_le, value["lag_le"], strict=True)]
            lag_count += value["lag_count"]
            lag_sum += value["lag_sum"]
        for model, usd in sorted(spent.items()):
            spend.add_metric([model], usd)
        lag = HistogramMetricFamily(
            "dreampixel_job_finish_lag_seconds",
            "Time from a prediction's end at the provider to its job's end here (webhook or poller, then the "
            "outputs copied).",
            buckets=[*((str(bound), count) for bound, count in zip(LAG_BUCKETS, lag_le, strict=True)),
                     ("+Inf", lag_count)],
            sum_value=lag_sum,
        )  # fmt: skip
        yield from (finished, spend, lag)

    def _queue(self, now: datetime) -> Iterator[Metric]:
        broker = get_broker()
        yield GaugeMetricFamily("dreampixel_queue_tasks", "Tasks waiting in the queue.", value=broker.queue_size())
        if isinstance(broker, TrackedRedis):
            enqueued_at = broker.oldest_enqueued_at()
        else:  # the ORM broker (development): its oldest row no cluster has taken
            oldest = OrmQ.objects.filter(key=broker.list_key, lock__lte=now).order_by("pk").first()
            enqueued_at = task_of(oldest.payload).get("started") if oldest else None
        yield GaugeMetricFamily(
            "dreampixel_queue_oldest_task_seconds",
            "How long the task at the head of the queue has waited (0 when the queue is empty).",
            value=max((now - enqueued_at).total_seconds(), 0.0) if enqueued_at else 0,
        )
        if isinstance(broker, TrackedRedis):
            held = GaugeMetricFamily(
                "dreampixel_queue_tasks_held",
                "Tasks a supervised cluster has taken and not finished (handed back if it dies).",
                labels=["cluster"],
            )
            for cluster in worker_clusters():
                if cluster.stopped_at is None:
                    held.add_metric([cluster.name], broker.connection.llen(inflight_key(broker.list_key, cluster.name)))
            yield held

    def _workers(self, now: datetime) -> Iterator[Metric]:
        clusters = worker_clusters()
        age = GaugeMetricFamily(
            "dreampixel_worker_heartbeat_age_seconds",
            "Seconds since each running supervised cluster last finished a task (its heartbeat).",
            labels=["cluster"],
        )
        restarts = CounterMetricFamily(
            "dreampixel_worker_restarts", "Restarts of each supervised cluster by its supervisor.", labels=["cluster"]
        )
        states: dict[str, int] = defaultdict(int)
        newest: datetime | None = None
        for cluster in clusters:
            states[cluster.state] += 1
            if cluster.last_heartbeat_at and (newest is None or cluster.last_heartbeat_at > newest):
                newest = cluster.last_heartbeat_at
            if cluster.stopped_at is None:
                beat = cluster.last_heartbeat_at
                age.add_metric([cluster.name], (now - beat).total_seconds() if beat else float("inf"))
                restarts.add_metric([cluster.name], cluster.restarts)
        by_state = GaugeMetricFamily(
            "dreampixel_worker_clusters", "Supervised clusters seen in the last day, by state.", labels=["state"]
        )
        for state in ("working", "no recent heartbeat", "supervisor gone", "stopped"):
            by_state.add_metric([state], states[state])
        yield from (age, restarts, by_state)
        yield GaugeMetricFamily(
            "dreampixel_worker_newest_heartbeat_age_seconds",
            "Seconds since any supervised cluster last finished a task (+Inf if none ever did): no worker works "
            "when this grows.",
            value=(now - newest).total_seconds() if newest else float("inf"),
        )

    def _billing(self, now: datetime) -> Iterator[Metric]:
        failing, failed_lately = stripe_events_failing(received_since=now - timedelta(hours=1))
        yield GaugeMetricFamily(
            "dreampixel_stripe_events_failing", "Stripe events whose processing failed (Stripe retries them).",
            value=failing,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "dreampixel_stripe_events_failed_last_hour",
            "Of those, the ones received in the last hour (what the product's hourly alert counts).",
            value=failed_lately,
        )
        outstanding = credits_outstanding(now)
        if outstanding is not None:
            yield GaugeMetricFamily(
                "dreampixel_credits_outstanding", "Credits people hold and may still spend.", value=outstanding
            )
        finished_at, findings = reconcile_open_findings()
        open_findings = GaugeMetricFamily(
            "dreampixel_reconcile_findings_open",
            "Items the last reconcile run found and nobody fixed yet, by check.",
            labels=["check"],
        )
        for check, count in sorted(findings.items()):
            open_findings.add_metric([check], count)
        yield open_findings
        if finished_at:
            yield GaugeMetricFamily(
                "dreampixel_reconcile_last_run_timestamp_seconds",
                "When the last reconcile run finished (Unix time).",
                value=finished_at.timestamp(),
            )


def site_metrics() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector())
    return generate_latest(registry)
