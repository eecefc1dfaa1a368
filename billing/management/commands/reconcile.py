from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from billing.reconcile import run_checks


class Command(BaseCommand):
    help = (
        "Check that money and work agree: every cached balance equals the sum of its ledger "
        "entries, every entry's balance-after is the running sum, every refund gives back one "
        "charge for its amount, nothing is refunded twice, and which balances are below zero. "
        "Prints a summary (or JSON with --json: a count and examples per finding) and exits "
        "with status 1 when it finds a problem. Reads only; safe to run at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the findings as JSON.")

    def handle(self, *args, **options):
        findings = run_checks()
        problems = [finding for finding in findings if not finding.ok]
        if options["json"]:
            report = {
                "ok": not problems,
                "findings": {
                    f.name: {"description": f.description, "count": f.count, "examples": f.examples} for f in findings
                },
            }
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            for finding in findings:
                if finding.ok:
                    self.stdout.write(f"  ok    {finding.description}")
                else:
                    self.stdout.write(self.style.ERROR(f"  {finding.count:<5} {finding.description}"))
                    for example in finding.examples:
                        self.stdout.write(f"          {example}")
            summary = f"{len(problems)} of {len(findings)} checks found problems." if problems else "All clear."
            self.stdout.write(summary)
        if problems:
            raise CommandError("reconcile found problems", returncode=1)
