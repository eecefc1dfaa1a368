"""django-q2 tasks of billing (scheduled by generation/schedules.py)."""

from __future__ import annotations

from billing import reconcile


def reconcile_run() -> dict:
    # Hourly: check and store; repairs are an operator's or staff's decision (--fix, the admin).
    run, _, _ = reconcile.reconcile_run(fix=False, trigger="schedule")
    return {"run": run.pk, "ok": run.ok}
