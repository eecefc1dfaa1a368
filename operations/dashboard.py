"""The admin home's figures: jobs, money, alerts, stuck jobs and reports, in a fixed number of
queries whatever the number of jobs (billing's own panels come from billing/backoffice.py).

The windows are ranges on created_at / finished_at (today, the last 24 hours, the last 30
days), grouped by day in the database. A day of the 30 whose figures can no longer change is
kept in the cache, so a view reads the rows of today, not of the whole month."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.models import User
from billing.backoffice import billing_figures, billing_panels, outstanding_credits, revenue_by_day
from billing.models import LedgerEntry
from billing.money import format_money
from core.charts import Series, bar_chart, line_chart
from core.skips import skipped_recently
from generation.models import Job, JobReport
from generation.stats import duration_percentiles, percentile
from operations.alerts import alerts_current

Kind = LedgerEntry.Kind
Status = Job.Status
DAYS = 30
# A day's chart figures are settled this long after it ends (an entry stamped just before
# midnight may commit just after), once none of its jobs is queued or running.
SETTLED_AFTER = timedelta(minutes=15)


def _success_rate(counts: dict) -> float | None:
    # A cancel (by the person, or staff) is neither a success nor a failure: counted apart.
    decided = counts["succeeded"] + counts["failed"]
    return counts["succeeded"] / decided if decided else None


def _window(since) -> dict:
    counts = Job.objects.filter(created_at__gte=since).aggregate(
        total=Count("pk"), **{status: Count("pk", filter=Q(status=status)) for status in Job.Status.values}
    )
    # Percentiles computed in the database over the indexed created_at range, not in Python.
    median_seconds, p95_seconds = duration_percentiles(Job.objects.filter(created_at__gte=since))
    money = LedgerEntry.objects.filter(created_at__gte=since).aggregate(
        charged=Sum("amount", filter=Q(kind=Kind.CHARGE)),
        refunded=Sum("amount", filter=Q(kind=Kind.REFUND)),
        sold=Sum("amount", filter=Q(kind__in=[Kind.PURCHASE, Kind.SUBSCRIPTION_GRANT])),
    )
    return {
        "jobs": counts,
        "success_rate": _success_rate(counts),
        "median_seconds": median_seconds,
        "p95_seconds": p95_seconds,
        "credits_charged": -(money["charged"] or 0),
        "credits_refunded": money["refunded"] or 0,
        "credits_sold": money["sold"] or 0,
        "signups": User.objects.filter(date_joined__gte=since).count(),
    }


class _Percentile95(Aggregate):
    # PostgreSQL's own percentile: the durations stay in the database.
    function = "PERCENTILE_DISC"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class _Seconds(Func):
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    output_field = FloatField()


def _finished_by_day(since, tz) -> dict:
    finished = Job.objects.filter(finished_at__gte=since, status__in=[Status.SUCCEEDED, Status.FAILED]).annotate(
        day=TruncDate("finished_at", tzinfo=tz)
    )
    figures: dict[str, Aggregate] = {
        "succeeded": Count("pk", filter=Q(status=Status.SUCCEEDED)),
        "failed": Count("pk", filter=Q(status=Status.FAILED)),
    }
    if connection.vendor == "postgresql":
        figures["p95"] = _Percentile95(_Seconds(F("finished_at") - F("created_at")), filter=Q(status=Status.SUCCEEDED))
        return {row["day"]: row for row in finished.values("day").annotate(**figures).order_by()}
    # SQLite (the dev default) has no percentile: the durations come to Python, one query still.
    rows: dict = defaultdict(lambda: {"succeeded": 0, "failed": 0, "durations": []})
    for day, status, created_at, finished_at in finished.values_list("day", "status", "created_at", "finished_at"):
        rows[day][status] += 1
        if status == Status.SUCCEEDED:
            assert finished_at is not None  # filtered on finished_at above
            rows[day]["durations"].append((finished_at - created_at).total_seconds())
    return {day: row | {"p95": percentile(row["durations"], 0.95)} for day, row in rows.items()}


def _day_start(day: date, tz) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), tz)


def _figures_from(since: datetime, tz) -> dict[date, dict]:
    """Each day's chart figures from `since` on, in three grouped queries over indexed ranges:
    jobs started by status, jobs finished (with the p95 time), ledger sums by kind."""
    figures: dict[date, dict] = defaultdict(lambda: {"jobs": {}, "finished": None, "money": {}})
    created = Job.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at", tzinfo=tz))
    for row in created.values("day", "status").annotate(n=Count("pk")).order_by():
        figures[row["day"]]["jobs"][row["status"]] = row["n"]
    for day, row in _finished_by_day(since, tz).items():
        figures[day]["finished"] = {key: row[key] for key in ("succeeded", "failed", "p95")}
    entries = LedgerEntry.objects.filter(
        kind__in=[Kind.PURCHASE, Kind.SUBSCRIPTION_GRANT, Kind.CHARGE, Kind.REFUND], created_at__gte=since
    ).annotate(day=TruncDate("created_at", tzinfo=tz))
    for row in entries.values("day", "kind").annotate(total=Sum("amount")).order_by():
        figures[row["day"]]["money"][row["kind"]] = row["total"]
    return figures


def _figures_by_day(days: list[date], now: datetime, tz) -> dict[date, dict]:
    """The chart figures of these days (oldest first, today last): settled days from the cache,
    the others read from the first one not kept there on, and kept once settled."""
    settled = [day for day in days if _day_start(day + timedelta(days=1), tz) + SETTLED_AFTER <= now]
    keys = {day: f"admin-home-day:{tz}:{day.isoformat()}" for day in settled}
    try:
        kept = cache.get_many(list(keys.values()))
    except RedisError:  # Redis down: the admin home still shows, every day read from the database
        kept = {}
    figures = {day: kept[keys[day]] for day in settled if keys[day] in kept}
    first = next(day for day in days if day not in figures)  # today at the latest: it is never settled
    read = _figures_from(_day_start(first, tz), tz)
    figures |= {day: read[day] for day in days if day >= first}
    final = set(Job.FINAL_STATUSES)
    settling = {keys[d]: figures[d] for d in settled if keys[d] not in kept and set(figures[d]["jobs"]) <= final}
    with contextlib.suppress(RedisError):
        cache.set_many(settling, (DAYS + 1) * 24 * 3600)
    return figures


def _last_30_days(now: datetime) -> dict:
    """Five pictures of the last 30 days: each day's figures from one grouped query per kind on
    an indexed range, or from the cache for a settled day."""
    tz = timezone.get_current_timezone()
    today = timezone.localdate(now)
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    since = _day_start(days[0], tz)
    labels = [day.strftime("%b %d") for day in days]

    figures = _figures_by_day(days, now, tz)
    jobs = {day: defaultdict(int, figures[day]["jobs"]) for day in days}
    finished = {day: figures[day]["finished"] for day in days if figures[day]["finished"]}
    money = {day: defaultdict(int, figures[day]["money"]) for day in days}
    currency, revenue = revenue_by_day(since=since, tz=tz)

    def failure_rate(day) -> float | None:
        row = finished.get(day)
        if not row:
            return None
        decided = row["succeeded"] + row["failed"]
        return 100 * row["failed"] / decided if decided else None

    job_series = [
        Series("succeeded", "dp-s-succeeded", [jobs[d][Status.SUCCEEDED] for d in days]),
        Series("failed", "dp-s-failed", [jobs[d][Status.FAILED] for d in days]),
        Series("canceled", "dp-s-canceled", [jobs[d][Status.CANCELED] for d in days]),
        Series("queued or running", "dp-s-open", [jobs[d][Status.QUEUED] + jobs[d][Status.RUNNING] for d in days]),
    ]
    sold = [money[d][Kind.PURCHASE] + money[d][Kind.SUBSCRIPTION_GRANT] for d in days]
    used = [-(money[d][Kind.CHARGE] + money[d][Kind.REFUND]) for d in days]  # charged less refunded
    revenue_cents = [revenue.get(d, 0) for d in days]
    return {
        "jobs": bar_chart(title="Jobs started per day, by outcome", labels=labels, series=job_series),
        "credits": line_chart(
            title="Credits sold and used per day (used: charged less refunded)",
            labels=labels,
            series=[Series("sold", "dp-s-sold", sold), Series("used", "dp-s-used", used)],
        ),
        "revenue": bar_chart(
            title=f"Revenue per day through Checkout ({(currency or 'usd').upper()})",
            labels=labels,
            series=[Series("revenue", "dp-s-revenue", [c / 100 for c in revenue_cents])],
        ),
        "failure_rate": line_chart(
            title="Failure rate per day (failed of succeeded + failed; cancels apart)",
            labels=labels,
            unit="%",
            series=[Series("failure rate", "dp-s-failed", [failure_rate(d) for d in days])],
            top=100,
        ),
        "p95": line_chart(
            title="Time to finish per day, p95 (succeeded jobs)",
            labels=labels,
            unit="s",
            series=[Series("p95", "dp-s-time", [finished[d]["p95"] if d in finished else None for d in days])],
        ),
        "totals": {
            "jobs": sum(sum(jobs[d].values()) for d in days),
            "sold": sum(sold),
            "used": sum(used),
            "revenue": format_money(sum(revenue_cents), currency) if currency else None,
        },
    }


def dashboard() -> dict:
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": _window(today) | billing_figures(since=today),
        "last_24h": _window(now - timedelta(hours=24)) | billing_figures(since=now - timedelta(hours=24)),
        "outstanding": outstanding_credits(),
        "charts": _last_30_days(now),
        "alerts": alerts_current(),
        "stuck_jobs": list(
            Job.objects.filter(status=Job.Status.RUNNING, deadline_at__lt=now)
            .select_related("user", "model")
            .order_by("deadline_at")[:10]
        ),
        "open_reports": JobReport.objects.filter(status=JobReport.Status.OPEN).count(),
        # What the scheduled loops went past in the last day (one bad item stops no loop).
        "skipped": skipped_recently(),
    } | billing_panels()
