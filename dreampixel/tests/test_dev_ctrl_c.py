"""`make dev` in a terminal, after `cp .env.example .env`: every step reads .env (the migrate step
prepares the database the web server then uses, on the port .env names); Ctrl-C stops the web
server and the worker cleanly, and make reports no error. Driven through a real pseudo-terminal,
as a person's shell would run it."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import socket
import time
import urllib.request

from tests.procfile import ROOT, dev_env_file


def _read_until(fd: int, pattern: str, seconds: float, seen: list[str]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen.append(os.read(fd, 65536).decode(errors="replace"))
            except OSError:  # the terminal closed: everything in it has exited
                return bool(re.search(pattern, "".join(seen)))
        if re.search(pattern, "".join(seen)):
            return True
    return False


def test_ctrl_c_on_make_dev_stops_web_and_worker_and_make_reports_no_error(tmp_path):
    env_file, database, port = dev_env_file(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PORT")}

    pid, terminal = pty.fork()
    if pid == 0:  # the child: a shell-like session running make in the foreground
        os.chdir(ROOT)
        os.execvpe("make", ["make", "dev", f"ENV_FILE={env_file}"], env)  # noqa: S606 (our own make)
    seen: list[str] = []
    try:
        assert _read_until(terminal, r"Q Cluster \S+ \[\w+\] running", 60, seen), "".join(seen)
        assert _read_until(terminal, r"Quit the server with", 30, seen), "".join(seen)
        # Served on .env's port, from the database .env names, which the migrate step prepared.
        assert database.exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
        os.write(terminal, b"\x03")  # Ctrl-C, as typed: the terminal signals its foreground job
        _read_until(terminal, r"(?!)", 15, seen)  # read until the terminal closes
        status = None
        for _ in range(50):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("make is still running 20 s after Ctrl-C:\n" + "".join(seen))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # only if it hung: the session this test started
    output = "".join(seen)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, output
    assert "Interrupt" not in output and "Error" not in output, output
    assert "SIGKILL" not in output, output  # the worker stopped by itself, in time
    assert re.search(r"Q Cluster \S+ has stopped", output), output
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # the web server is gone too
