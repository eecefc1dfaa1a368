"""gunicorn started exactly as the Procfile's `web:` line, for fault tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.procfile import stop_group

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile_web() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return line.removeprefix("web:").strip()


def static_files_built() -> None:
    """The hashed static files the production storage serves (the build step; quick when done)."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip


@contextlib.contextmanager
def procfile_gunicorn(env: dict[str, str], *, log: Path | None = None, collect_static: bool = True) -> Iterator[int]:
    """Run the Procfile's web line (a shell line, as a PaaS runs it) on a free port; yields the port.
    `collect_static=False` when the caller built the static files where its settings look."""
    if collect_static:
        static_files_built()
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env, "PORT": str(port)}
    full_env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{full_env['PATH']}"  # the Procfile names gunicorn bare
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    process = subprocess.Popen(  # noqa: S602 (the Procfile's own shell line)
        procfile_web(), shell=True, cwd=ROOT, env=full_env, start_new_session=True, stdout=out, stderr=out
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    said = log.read_text(errors="replace")[-3000:] if log else ""
                    raise RuntimeError(f"gunicorn did not start:\n{said}") from None
                time.sleep(0.1)
        yield port
    finally:
        stop_group(process, 15)
        if log:
            out.close()
