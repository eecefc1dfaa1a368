from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from billing.reconcile.findings import Finding
from billing.reconcile.runner import reconcile_run


class Command(BaseCommand):
    help = (
        "Check that money and work agree. Ledger: every cached balance equals the sum of its "
        "entries, every balance-after is the running sum, every refund gives back one charge for "
        "its amount, nothing is refunded twice, and which balances are below zero. Jobs: failed "
        "or canceled jobs without their refund, succeeded jobs with a refund, jobs without a "
        "charge, charges without a job, jobs running past their deadline. Stripe (when configured), "
        "over the last STRIPE_RECONCILE_WINDOW_HOURS: paid Checkout sessions and plan invoices without "
        "their credits; grants without a paid session or invoice; Stripe's refunds and disputes "
        "(listed by state: refund succeeded, dispute lost, won with funds reinstated) without their "
        "clawback or, when won, their restore; people billed for two plans at once; deleted accounts "
        "whose plan still runs or whose renewal was paid after the deletion. Stripe webhook events "
        "that failed, or were not processed within 15 minutes, whenever they came. Prints a summary (or JSON with --json: a "
        "count, examples and what was looked at per finding) and exits with status 1 when a problem "
        "remains. With --fix it first repairs what can be repaired, idempotently (running it twice "
        "repairs nothing twice): refunds owed and stuck jobs; credits owed for paid sessions and "
        "invoices; missing clawbacks and restores (the webhook's own service); the later of two "
        "plans canceled and its invoices refunded; a deleted account's plan canceled and a renewal "
        "paid after the deletion refunded; unprocessed events processed. Each run is stored with "
        "its findings for the admin. "
        "By default each check reads only what changed since the last run that found it clean "
        "(entries written, accounts moved, jobs created or finished since then, with a 15-minute "
        "overlap), so an hourly run costs what the hour changed and a problem keeps being reported "
        "until it is gone. --full checks every row with set-based SQL: run it after a restore, after "
        "editing rows by hand, and on a schedule (e.g. nightly) as the net for changes made outside "
        "the services."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the findings as JSON.")
        parser.add_argument("--fix", action="store_true", help="Repair what can be repaired, then check again.")
        parser.add_argument(
            "--full", action="store_true", help="Check every row, not only what changed since the last clean run."
        )

    def handle(self, *args, **options):
        # Every run is stored with its findings; staff read them in the admin.
        run, findings, fixed = reconcile_run(fix=options["fix"], full=options["full"], trigger="command")
        problems = [finding for finding in findings if not finding.ok]
        if options["json"]:
            report = self._report(findings, fixed) | {"full": run.full, "since": run.since}
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            self.stdout.write("Full pass." if run.full else f"Changes since {run.since:%Y-%m-%d %H:%M:%S %Z}.")
            self._print(findings, fixed)
        if problems:
            raise CommandError("reconcile found problems", returncode=1)

    @staticmethod
    def _report(findings: list[Finding], fixed: dict[str, int]) -> dict:
        return {
            "ok": all(f.ok for f in findings),
            "fixed": fixed,
            "findings": {
                f.name: {
                    "description": f.description,
                    "count": f.count,
                    "examples": f.examples,
                    "fixable": f.fix is not None,
                    "summary": f.summary,
                }
                for f in findings
            },
        }

    def _print(self, findings: list[Finding], fixed: dict[str, int]) -> None:
        for name, count in fixed.items():
            self.stdout.write(self.style.SUCCESS(f"  fixed {count}: {name}"))
        for finding in findings:
            summary = ", ".join(f"{count} {label}" for label, count in finding.summary.items())
            if finding.ok:
                self.stdout.write(f"  ok    {finding.description}" + (f" (seen: {summary})" if summary else ""))
                continue
            hint = " (reconcile --fix repairs this)" if finding.fix is not None else ""
            self.stdout.write(self.style.ERROR(f"  {finding.count:<5} {finding.description}{hint}"))
            if summary:
                self.stdout.write(f"          seen: {summary}")
            for example in finding.examples:
                self.stdout.write(f"          {example}")
        problems = sum(not f.ok for f in findings)
        self.stdout.write(f"{problems} of {len(findings)} checks found problems." if problems else "All clear.")
