from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from billing.models import LedgerEntry
from generation.models import Job


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class ModelStats:
    model: str
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    durations: list[float] = field(default_factory=list)
    charged: int = 0
    refunded: int = 0

    @property
    def jobs(self) -> int:
        return sum(self.by_status.values())

    @property
    def success_rate(self) -> float | None:
        finished = sum(self.by_status[s] for s in Job.FINAL_STATUSES)
        return self.by_status[Job.Status.SUCCEEDED] / finished if finished else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None

    @property
    def p95_seconds(self) -> float | None:
        return percentile(self.durations, 0.95)

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


def generation_stats(*, hours: int) -> list[ModelStats]:
    """Per model, for jobs created in the last `hours`: one query for jobs, one for refunds."""
    since = timezone.now() - timedelta(hours=hours)
    rows = Job.objects.filter(created_at__gte=since).values_list(
        "id", "model__name", "status", "cost", "created_at", "finished_at"
    )
    per_model: dict[str, ModelStats] = {}
    total = ModelStats(model="All models")
    job_model: dict[str, str] = {}
    for job_id, model, status, cost, created_at, finished_at in rows:
        stats = per_model.setdefault(model, ModelStats(model=model))
        job_model[f"job:{job_id}"] = model
        for target in (stats, total):
            target.by_status[status] += 1
            target.charged += cost
            if status == Job.Status.SUCCEEDED and finished_at:
                target.durations.append((finished_at - created_at).total_seconds())
    refunds = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND, reference__in=list(job_model)).values_list(
        "reference", "amount"
    )
    for reference, amount in refunds:
        per_model[job_model[reference]].refunded += amount
        total.refunded += amount
    return [*sorted(per_model.values(), key=lambda s: -s.jobs), total]
