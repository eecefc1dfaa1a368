"""The recurring work, brought up to date on every `migrate` (operations/apps.py) and by
`install_schedules`: each schedule by its name, so running it twice leaves one of each."""

from __future__ import annotations

from typing import Any

from django_q.models import Schedule

SCHEDULES: list[dict[str, Any]] = [
    {
        "name": "sweep stuck jobs",
        "func": "generation.tasks.sweep_stuck_jobs",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "reconcile",
        "func": "billing.tasks.reconcile_scheduled",
        "schedule_type": Schedule.HOURLY,
        "minutes": None,
    },
    {
        "name": "cleanup",
        "func": "operations.tasks.cleanup",
        "schedule_type": Schedule.DAILY,
        "minutes": None,
    },
    {
        # The dead-man's switch (operations/heartbeat.py): HEARTBEAT_URL hears from us every minute.
        "name": "heartbeat",
        "func": "operations.tasks.ping_heartbeat_url",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "alerts",
        "func": "operations.tasks.check_alerts",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
]

# Names the schedules had before, each renamed in place (keeping its next run) when seen.
RENAMED = {
    "generation: sweep stuck jobs": "sweep stuck jobs",
    "billing: reconcile": "reconcile",
    "generation: cleanup": "cleanup",
    "generation: alerts": "alerts",
}


def install_schedules(schedule_model: Any = Schedule, *, using: str = "default") -> list[str]:
    """Create or update each schedule by its name. `schedule_model` is the historical model when
    called after a migration (post_migrate)."""
    schedules = schedule_model.objects.using(using)
    for old, new in RENAMED.items():
        if not schedules.filter(name=new).exists():
            schedules.filter(name=old).update(name=new)
        schedules.filter(name=old).delete()
    for spec in SCHEDULES:
        schedules.update_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "args": None,
                "schedule_type": spec["schedule_type"],
                "minutes": spec["minutes"],
                "repeats": -1,
            },
        )
    return [spec["name"] for spec in SCHEDULES]
