"""Migrations that do not lock busy tables (issue 21.3). Every migration of the apps passes
django-migration-linter with the options in pyproject.toml (the ones written before the rules are
listed there with their findings), the linter does catch what the rules forbid, and the release
step gives up on a lock it cannot get within MIGRATION_LOCK_TIMEOUT instead of queueing every
query of the site behind it."""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django_migration_linter import MigrationLinter
from django_migration_linter.sql_analyser import analyse_sql_statements, get_sql_analyser_class

from tests.procfile import ROOT, procfile_line

OPTIONS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["django_migration_linter"]


def project_apps() -> list[str]:
    # Every app of this repository, whatever it is called: a new one is linted from its first migration.
    return [
        app.label
        for app in apps.get_app_configs()
        if Path(app.path).is_relative_to(ROOT) and Path(app.path).relative_to(ROOT).parts[0] != ".venv"
    ]


@pytest.mark.django_db
def test_every_migration_passes_the_linter_with_the_project_options():
    assert {"accounts", "billing", "generation"} <= set(project_apps())
    linter = MigrationLinter(
        path=str(ROOT),
        include_apps=project_apps(),
        ignore_name=OPTIONS["ignore_name"],
        analyser_string=OPTIONS["sql_analyser"],
        all_warnings_as_errors=OPTIONS["warnings_as_errors"] == ["all"],
        no_cache=True,
        no_output=True,
    )
    linter.lint_all_migrations()
    assert linter.nb_valid >= 15  # it really read the apps' migrations
    assert (linter.nb_erroneous, linter.nb_warnings) == (0, 0), "run the linter with output to see which"
    assert linter.nb_ignored >= len(OPTIONS["ignore_name"])


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
