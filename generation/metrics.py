"""What generation tells /metrics (operations/metrics.py shows it): the jobs in flight, and what
finished in a stretch of time. Each is one grouped query over an index, whose size follows the
jobs in flight or the jobs of that stretch, never the whole table."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum

from generation.alerts import job_spend_usd
from generation.models import Job

Status = Job.Status
# Seconds from a prediction's end to its job's end: the webhook or the poller, then copying the
# outputs into our storage. The poller's goal is about two seconds.
LAG_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def jobs_in_flight() -> list[dict]:
    """Queued and running jobs per model, and how many of the running ones have their prediction
    at the provider; through the (status, deadline_at) index."""
    return list(
        Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        .values("model__key", "status")
        .annotate(jobs=Count("pk"), predictions=Count("pk", filter=~Q(prediction_id="")))
        .order_by()
    )


def oldest_running_since() -> datetime | None:
    """When the job that has been running longest started."""
    return Job.objects.filter(status=Status.RUNNING).aggregate(oldest=Min("started_at"))["oldest"]


def jobs_finished_between(start: datetime, end: datetime) -> list[dict]:
    """Jobs that became final in (start, end], per model and status, over the finished_at index:
    how many, their estimated provider cost, and the time from their prediction's end to theirs
    (a count per bucket of LAG_BUCKETS, cumulative as Prometheus has them, with their sum)."""
    lag = ExpressionWrapper(F("finished_at") - F("prediction_completed_at"), output_field=DurationField())
    timed = Q(prediction_completed_at__isnull=False)
    buckets = {
        f"lag_le_{index}": Count("pk", filter=timed & Q(lag__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(LAG_BUCKETS)
    }
    rows = (
        Job.objects.filter(finished_at__gt=start, finished_at__lte=end)
        .annotate(lag=lag)
        .values("model__key", "status")
        .annotate(
            jobs=Count("pk"),
            spend=Sum(job_spend_usd(), filter=~Q(prediction_id="")),
            lag_count=Count("pk", filter=timed),
            lag_sum=Sum("lag", filter=timed),
            **buckets,
        )
        .order_by()
    )
    return [
        {
            "model": row["model__key"],
            "status": row["status"],
            "jobs": row["jobs"],
            "usd": float(row["spend"] or 0),
            "lag_le": [row[f"lag_le_{index}"] for index in range(len(LAG_BUCKETS))],
            "lag_count": row["lag_count"],
            "lag_sum": row["lag_sum"].total_seconds() if row["lag_sum"] else 0.0,
        }
        for row in rows
    ]
