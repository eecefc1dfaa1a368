"""Running the checks: incrementally (what changed since each check last found nothing) or in
full, repairing on request, and storing each run with its findings for the admin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError
from django.utils import timezone

from accounts.models import StaffAction, User
from accounts.services import staff_action_record
from billing.models import ReconcileFinding, ReconcileRun
from billing.reconcile.findings import RECONCILE_CHECKS, Finding
from billing.reconcile.stripe_checks import stripe_listings_kept
from billing.services import ledger_acting_for
from core.skips import item_guard, item_skipped

# Incremental runs start this long before their watermark: an entry stamped just before the
# last run may have committed just after it read.
OVERLAP = timedelta(minutes=15)


def check_since(name: str) -> datetime | None:
    """Where an incremental run of this check starts: the start of the newest finished run in
    which it found nothing (minus OVERLAP), so a problem keeps being reported until it is gone.
    None (a full pass) when no run has ever found it clean."""
    clean = (
        ReconcileRun.objects.filter(finished_at__isnull=False)
        .exclude(findings__name=name)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return clean - OVERLAP if clean else None


def run_checks(*, full: bool = False) -> tuple[list[Finding], dict[str, datetime | None]]:
    """Every registered check's finding, and where each one started (None: a full pass)."""
    checks = list(RECONCILE_CHECKS.items())
    scopes = {name: None if full else check_since(name) for name, _ in checks}
    with stripe_listings_kept():
        return [_check_run(name, check, scopes[name]) for name, check in checks], scopes


def _check_run(name: str, check, since: datetime | None) -> Finding:
    """One check's finding; a check that raises stops none of the others and is itself a
    finding (so the run is not clean and the admin shows why)."""
    try:
        return check(since=since)
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        item_skipped(loop="reconcile", item=f"check {name}", error=error)
        return Finding(
            name=name,
            description=f"The check {name} could not run; it is retried on the next run",
            count=1,
            examples=[{"error": f"{type(error).__name__}: {error}"[:500]}],
        )


def reconcile_run(
    *, fix: bool = False, full: bool = False, trigger: str = "command", staff: User | None = None
) -> tuple[ReconcileRun, list[Finding], dict[str, int]]:
    """Run every check (first repairing what --fix may repair) and store the run and findings.

    Each check looks at what changed since the last run that found it clean; `full` checks
    everything (set-based SQL over whole tables)."""
    run = ReconcileRun.objects.create(trigger=trigger, started_by=staff)
    findings, scopes = run_checks(full=full)
    fixed: dict[str, int] = {}
    if fix:
        for finding in findings:
            if finding.fix is not None and not finding.ok:
                # A repair that raises is skipped (the finding stays); the others still run.
                with item_guard(loop="reconcile", item=f"fix {finding.name}"):
                    fixed[finding.name] = finding.fix()
        if fixed:
            # Checked again outside run_checks, so Stripe is read afresh after the repairs.
            findings = [_check_run(f.name, _check(f.name), scopes[f.name]) for f in findings]
    ReconcileFinding.objects.bulk_create(
        ReconcileFinding(
            run=run,
            name=f.name,
            description=f.description[:255],
            count=f.count,
            examples=_jsonable(f.examples),
            fixable=f.fix is not None,
        )
        for f in findings
        if not f.ok
    )
    run.finished_at = timezone.now()
    run.ok = all(f.ok for f in findings)
    run.checks = len(findings)
    run.fixed = fixed
    # What this run covered, for the admin: full, or from the earliest start of any check.
    starts = [since for since in scopes.values() if since is not None]
    run.full = not starts
    run.since = min(starts) if starts else None
    run.save()
    return run, findings, fixed


def _check(name: str):
    check = RECONCILE_CHECKS.get(name)
    assert check is not None  # the findings came from the registered checks
    return check


def finding_fix(*, finding: ReconcileFinding, staff: User) -> int:
    """Fix one stored finding from the admin: run its check again now, then its repair (the
    same idempotent code as `reconcile --fix`). Returns how many things were repaired."""
    check = RECONCILE_CHECKS.get(finding.name)
    if check is None:  # a check that no longer exists
        return 0
    current = check(since=check_since(finding.name))
    with ledger_acting_for(staff):  # what the repair writes names the staff member
        repaired = current.fix() if current.fix is not None and not current.ok else 0
    finding.fixed_count = repaired
    finding.fixed_at = timezone.now()
    finding.fixed_by = staff
    finding.save(update_fields=["fixed_count", "fixed_at", "fixed_by"])
    staff_action_record(
        staff=staff, kind=StaffAction.Kind.FINDING_FIX, reference=f"finding:{finding.pk}",
        reason=finding.description, details={"check": finding.name, "repaired": repaired},
    )  # fmt: skip
    return repaired


def _jsonable(examples: list[dict]) -> list[dict]:
    # Examples hold dates, UUIDs and Decimals; stored as the text they print as.
    return json.loads(json.dumps(examples, default=str))
