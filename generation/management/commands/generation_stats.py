from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from generation.models import Job
from generation.stats import generation_stats


def _seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "—"


class Command(BaseCommand):
    help = (
        "Jobs created in the last N hours (default 24), per model and in total: how many in each "
        "status, success rate (succeeded of finished), median and p95 time from submission to "
        "result for succeeded jobs, credits charged and refunded. Reads only: counts, sums and "
        "percentiles are computed in the database over the indexed created_at range, so its cost "
        "follows the jobs in the window, not the size of the tables."
    )

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=24, help="How far back to look (default 24).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args, hours: int, **options):
        if hours <= 0:
            self.stderr.write("--hours must be a positive number.")
            raise SystemExit(2)
        stats = generation_stats(hours=hours)
        if options["json"]:
            self.stdout.write(json.dumps([s.as_dict() for s in stats], indent=2))
            return
        statuses = Job.Status.values
        header = f"{'model':<24}{'jobs':>6}" + "".join(f"{s:>11}" for s in statuses)
        header += f"{'success':>9}{'median':>9}{'p95':>9}{'charged':>10}{'refunded':>10}"
        self.stdout.write(f"Jobs created in the last {hours} h")
        self.stdout.write(header)
        for s in stats:
            rate = f"{s.success_rate:.0%}" if s.success_rate is not None else "—"
            line = f"{s.model[:23]:<24}{s.jobs:>6}" + "".join(f"{s.by_status.get(st, 0):>11}" for st in statuses)
            line += (
                f"{rate:>9}{_seconds(s.median_seconds):>9}{_seconds(s.p95_seconds):>9}{s.charged:>10,}{s.refunded:>10,}"
            )
            self.stdout.write(line)
