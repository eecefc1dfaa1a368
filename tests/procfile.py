"""Start a process of the Procfile exactly as a platform does: its own shell line, with PORT set."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, seconds: float) -> None:
    """SIGTERM to the process's whole group (it was started in a session of its own), then
    SIGKILL if it has not exited within `seconds`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def dev_env_file(folder: Path) -> tuple[Path, Path, int]:
    """The development example (.env.example) as a person copies it, on a scratch SQLite database,
    media folder and ports (not 8000 and 8010: a `make dev` may be running). Returns the file,
    the database and the web port."""
    port = free_port()
    env_file, database = folder / ".env", folder / "db.sqlite3"
    env_file.write_text(
        (ROOT / ".env.example").read_text()
        + f"PORT={port}\nDATABASE_URL=sqlite:///{database}\nMEDIA_ROOT={folder / 'media'}\n"
        + f"PAYMENTS_SANDBOX_URL=http://127.0.0.1:{free_port()}\n"
    )
    return env_file, database, port


def procfile_line(name: str, procfile: Path = ROOT / "Procfile") -> str:
    prefix = f"{name}:"
    line = next(line for line in procfile.read_text().splitlines() if line.startswith(prefix))
    return line.removeprefix(prefix).strip()


def wait_for_healthz(port: int, seconds: float, process: subprocess.Popen | None = None) -> bool:
    """Until /healthz answers 200, as a platform's health check waits (an open port is not enough:
    nginx's configuration test binds it for a moment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def procfile_web(env: dict[str, str], *, seconds: float = 30) -> Iterator[int]:
    """The Procfile's `web` on a free port; yields the port once it accepts connections."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("WEB_FRONT", "PORT", "WEB_CONCURRENCY")}
    full_env = {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}:/usr/sbin:/sbin",
        **env,
        "PORT": str(port),
    }
    process = subprocess.Popen(  # noqa: S602 (the Procfile's own shell line, as a platform runs it)
        procfile_line("web"), shell=True, cwd=ROOT, env=full_env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        if not wait_for_healthz(port, seconds, process):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError("the web process did not start: " + process.stderr.read().decode()[-3000:])
        yield port
    finally:
        stop_group(process, 40)
