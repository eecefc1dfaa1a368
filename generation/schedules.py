"""The recurring work, installed idempotently (by name) on every `migrate` (a post_migrate
handler in generation/apps.py) and by `install_schedules`."""

from __future__ import annotations

from typing import Any

SCHEDULES: list[dict[str, Any]] = [
    {
        "name": "generation: sweep stuck jobs",
        "func": "generation.tasks.sweep_stuck_jobs",
        "args": None,
        "schedule_type": "I",  # every `minutes`
        "minutes": 1,
    },
    {
        "name": "billing: reconcile",
        "func": "billing.tasks.reconcile_run",
        "args": None,
        "schedule_type": "H",
        "minutes": None,
    },
    {
        "name": "generation: cleanup",
        "func": "generation.tasks.cleanup",
        "args": None,
        "schedule_type": "D",
        "minutes": None,
    },
    {
        "name": "generation: alerts",
        "func": "generation.tasks.check_alerts",
        "args": None,
        "schedule_type": "I",
        "minutes": 5,
    },
]


def install_schedules(schedule_model: Any = None, *, using: str = "default") -> list[str]:
    """Create or update each schedule by its name; running it twice leaves one of each.

    `schedule_model` is the historical model when called from a migration's post_migrate."""
    if schedule_model is None:
        from django_q.models import Schedule

        schedule_model = Schedule
    for spec in SCHEDULES:
        schedule_model.objects.using(using).update_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "args": spec["args"],
                "schedule_type": spec["schedule_type"],
                "minutes": spec["minutes"],
                "repeats": -1,
            },
        )
    return [spec["name"] for spec in SCHEDULES]
