"""Migrations that do not lock busy tables. Every migration of the apps passes
django-migration-linter with the options in pyproject.toml (the ones written before the rules are
listed there with their findings), the linter does catch what the rules forbid, and the release
step gives up on a lock it cannot get within MIGRATION_LOCK_TIMEOUT instead of queueing every
query of the site behind it."""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib

import psycopg
import pytest
from django.db import connection
from django_migration_linter.sql_analyser import analyse_sql_statements, get_sql_analyser_class

from tests.procfile import ROOT, procfile_line

OPTIONS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["django_migration_linter"]


# The linter reads each migration's SQL through sqlmigrate, which refuses a migration that builds
# an index concurrently inside a transaction (a test's): so it runs in a process of its own.
LINT = """
import json, sys
from pathlib import Path
import django
django.setup()
from django.apps import apps
from django_migration_linter import MigrationLinter
root, options = Path(sys.argv[1]), json.loads(sys.argv[2])
# Every app of this repository, whatever it is called: a new one is linted from its first migration.
own = [
    app.label for app in apps.get_app_configs()
    if Path(app.path).is_relative_to(root) and Path(app.path).relative_to(root).parts[0] != ".venv"
]
linter = MigrationLinter(
    path=str(root), include_apps=own, ignore_name=options["ignore_name"],
    analyser_string=options["sql_analyser"], all_warnings_as_errors=options["warnings_as_errors"] == ["all"],
    no_cache=True, no_output=True,
)
linter.lint_all_migrations()
print(json.dumps({"apps": own, "valid": linter.nb_valid, "erroneous": linter.nb_erroneous,
                  "warnings": linter.nb_warnings, "ignored": linter.nb_ignored}))
"""


@pytest.mark.django_db
def test_every_migration_passes_the_linter_with_the_project_options():
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    )
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", LINT, str(ROOT), json.dumps(OPTIONS)],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"accounts", "billing", "generation"} <= set(result["apps"])
    assert result["valid"] >= 15  # it really read the apps' migrations
    assert (result["erroneous"], result["warnings"]) == (0, 0), "run the linter with output to see which"
    assert result["ignored"] >= len(OPTIONS["ignore_name"])


@pytest.mark.parametrize(
    "statement",
    [
        'ALTER TABLE "generation_job" ADD COLUMN "flag" boolean NOT NULL',
        'CREATE INDEX "generation_job_flag" ON "generation_job" ("status")',
        'ALTER TABLE "billing_ledgerentry" RENAME COLUMN "memo" TO "note"',
        'ALTER TABLE "generation_job" DROP COLUMN "prompt"',
    ],
)
def test_the_linter_refuses_what_the_rules_forbid(statement):
    analyser = get_sql_analyser_class("django.db.backends.postgresql", OPTIONS["sql_analyser"])
    errors, _ignored, warnings = analyse_sql_statements(analyser, [statement])
    assert errors or warnings


def test_the_release_step_gives_up_on_a_busy_table_instead_of_blocking_it(scratch_database):
    env = {**os.environ, "DATABASE_URL": scratch_database, "MIGRATION_LOCK_TIMEOUT": "2s"}
    env.pop("PGOPTIONS", None)
    manage = [str(ROOT / ".venv" / "bin" / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "generation", "0014", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    release = ["bash", "-c", procfile_line("release")]
    with psycopg.connect(scratch_database.replace("postgres://", "postgresql://")) as busy:
        # A long transaction that read the jobs table: the next migration's ALTER TABLE must wait.
        busy.execute("SELECT count(*) FROM generation_job")
        started = time.monotonic()
        result = subprocess.run(release, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - started
    assert result.returncode != 0
    assert "lock timeout" in result.stderr
    assert waited < 30  # two seconds of waiting, plus starting Django
    # Once the table is quiet, the same release goes through.
    result = subprocess.run(release, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
