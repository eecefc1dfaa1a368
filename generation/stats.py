from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, QuerySet, Sum
from django.utils import timezone

from billing.models import LedgerEntry
from generation.models import Job


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class PercentileCont(Aggregate):
    # PostgreSQL's ordered-set aggregate: the percentile is computed where the rows are.
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass
class ModelStats:
    model: str
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    median_seconds: float | None = None
    p95_seconds: float | None = None
    charged: int = 0
    refunded: int = 0

    @property
    def jobs(self) -> int:
        return sum(self.by_status.values())

    @property
    def success_rate(self) -> float | None:
        finished = sum(self.by_status[s] for s in Job.FINAL_STATUSES)
        return self.by_status[Job.Status.SUCCEEDED] / finished if finished else None

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "jobs": self.jobs,
            "by_status": dict(self.by_status),
            "success_rate": self.success_rate,
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
            "credits_charged": self.charged,
            "credits_refunded": self.refunded,
        }


def duration_percentiles(jobs: QuerySet[Job]) -> tuple[float | None, float | None]:
    """Median and p95 seconds from submission to result of these jobs' succeeded ones."""
    total = ModelStats(model="")
    _durations(jobs, {}, total, per_model_too=False)
    return total.median_seconds, total.p95_seconds


def _durations(
    jobs: QuerySet[Job], per_model: dict[str, ModelStats], total: ModelStats, *, per_model_too: bool = True
) -> None:
    succeeded = jobs.filter(status=Job.Status.SUCCEEDED, finished_at__isnull=False)
    took = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    if connection.vendor == "postgresql":
        figures = {"median": PercentileCont(took, fraction=0.5), "p95": PercentileCont(took, fraction=0.95)}
        rows = []
        if per_model_too:
            rows = [(row["model__name"], row) for row in succeeded.values("model__name").annotate(**figures)]
        rows.append((None, succeeded.aggregate(**figures)))
        for model, row in rows:
            target = total if model is None else per_model[model]
            target.median_seconds = row["median"].total_seconds() if row["median"] is not None else None
            target.p95_seconds = row["p95"].total_seconds() if row["p95"] is not None else None
        return
    # The development database (SQLite) has no percentile aggregate: compute them here.
    seconds: dict[str | None, list[float]] = defaultdict(list)
    for model, created_at, finished_at in succeeded.values_list("model__name", "created_at", "finished_at"):
        assert finished_at is not None  # filtered above
        if per_model_too:
            seconds[model].append((finished_at - created_at).total_seconds())
        seconds[None].append((finished_at - created_at).total_seconds())
    for model, values in seconds.items():
        target = total if model is None else per_model[model]
        target.median_seconds, target.p95_seconds = statistics.median(values), percentile(values, 0.95)


def generation_stats(*, hours: int) -> list[ModelStats]:
    """Per model, for jobs created in the last `hours`, aggregated in the database.

    Every query reads an indexed range: jobs by created_at, refunds by (kind, created_at), and
    the refunded jobs by primary key. No job list travels to Python.
    """
    since = timezone.now() - timedelta(hours=hours)
    jobs = Job.objects.filter(created_at__gte=since)
    per_model: dict[str, ModelStats] = {}
    total = ModelStats(model="All models")
    groups = jobs.values("model__name", "status").annotate(count=Count("pk"), cost=Sum("cost")).order_by()
    for row in groups:
        stats = per_model.setdefault(row["model__name"], ModelStats(model=row["model__name"]))
        for target in (stats, total):
            target.by_status[row["status"]] += row["count"]
            target.charged += row["cost"]
    _durations(jobs, per_model, total)
    # A refund comes after its job, so the refunds of these jobs are among those since `since`.
    # Summed per job: a job of several results may have a refund for each.
    refunds = dict(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND, created_at__gte=since, reference__startswith="job:")
        .values("reference")
        .annotate(total=Sum("amount"))
        .values_list("reference", "total")
        .order_by()
    )
    job_ids = []
    for reference in refunds:
        try:
            job_ids.append(uuid.UUID(reference.removeprefix("job:")))
        except ValueError:
            continue  # not a job's reference: nothing to count
    for job_id, model in jobs.filter(pk__in=job_ids).values_list("pk", "model__name"):
        amount = refunds[f"job:{job_id}"]
        per_model[model].refunded += amount
        total.refunded += amount
    return [*sorted(per_model.values(), key=lambda s: -s.jobs), total]
