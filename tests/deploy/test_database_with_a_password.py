"""`make test` on a PostgreSQL that asks for a password over TCP (a stock Debian cluster): a
documented TEST_DATABASE_URL with a password lets the suite in, and a wrong one is refused before
the suite starts, with the fix spelled out. A private server of our own, scram-sha-256 only, on a
free port: nothing here touches the machine's own PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.procfile import ROOT, free_port

PASSWORD = "s3cret pass'word"  # a space and a quote: the URL and every connection string must carry it


@pytest.fixture(scope="module")
def password_only_postgres():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert binaries, "PostgreSQL's server binaries are missing (make test installs postgresql)"
    bin_dir = Path(binaries[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="dreampixel-pg-"))
    shutil.chown(data, "postgres", "postgres")
    (data / "pw").write_text(PASSWORD)
    shutil.chown(data / "pw", "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*as_postgres, str(bin_dir / "initdb"), "-D", str(data / "cluster"), "-U", "postgres",
         "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={data / 'pw'}"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "cluster"), "-o", options, "-w", "-l",
         str(data / "log"), "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield port
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "cluster"), "-m", "immediate", "stop"])
        shutil.rmtree(data, ignore_errors=True)


def _url(port: int, password: str) -> str:
    from urllib.parse import quote

    return f"postgres://postgres:{quote(password, safe='')}@127.0.0.1:{port}/dreampixel"


def _ensure_services(url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEST_DATABASE_URL": url, "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    return subprocess.run(
        [str(ROOT / "scripts" / "ensure-services.sh")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_wrong_password_is_refused_before_the_suite_starts_with_the_fix_named(password_only_postgres):
    result = _ensure_services(_url(password_only_postgres, "not-the-password"))
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr
    assert "Set TEST_DATABASE_URL=postgres://USER:PASSWORD@" in result.stderr


def test_the_suite_runs_on_a_database_that_asks_for_a_password(password_only_postgres):
    url = _url(password_only_postgres, PASSWORD)
    assert _ensure_services(url).returncode == 0
    # A page on the database, and a test that opens connections of its own (it kills them).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "--create-db",
         "dreampixel/tests/test_health.py::test_readyz_asks_only_what_this_node_needs_to_serve_pages",
         "tests/faults/test_prediction_lookup.py::test_a_database_connection_cut_while_saving_the_prediction_id_is_retried_not_failed",
         "tests/faults/test_connection_cuts.py::test_charges_cut_mid_transaction_land_exactly_once"],
        cwd=ROOT, env={**env, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
