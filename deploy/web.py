#!/usr/bin/env python3
"""The web process: gunicorn behind its own buffering nginx, on $PORT.

    python deploy/web.py gunicorn dreampixel.wsgi --workers 3 ...   (the Procfile's `web`)

gunicorn's sync workers read a request themselves, so every client that trickles its headers or
its body holds one of them for up to its timeout, and three such clients stop a three-worker
site. This launcher therefore starts gunicorn on a private Unix socket and nginx on $PORT in
front of it: nginx reads each request whole (and takes each response whole) before a worker is
involved. Wherever the Procfile runs (a platform whose router streams requests, the container
image, a machine with no proxy), the front comes with it.

WEB_FRONT=none runs gunicorn alone on $PORT instead; only behind a proxy that itself buffers
whole requests (docs/deployment.md, "Slow clients").

What nginx changes is put back for the app (dreampixel/wsgi.py): it appends the address it got
the request from to X-Forwarded-For, and the app takes that as the peer, so TRUSTED_PROXY_COUNT
counts the proxies in front of this process exactly as without nginx; nginx believes a
forwarded scheme only from FORWARDED_ALLOW_IPS, as gunicorn does on its own.

The launcher stays in the foreground: SIGTERM or SIGINT stop nginx gracefully (it finishes the
requests it holds, which gunicorn still answers), then gunicorn; if either dies, the other is
stopped and the launcher exits non-zero, so the platform restarts the whole process.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, NoReturn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the project, for the one rule on log formats it shares
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from core.env import env_log_format  # noqa: E402

TEMPLATE = HERE / "nginx.conf"
# The photo uploads: ten photos of 10 MB and their form (generation/apps.py registers them with core/middleware.py).
MAX_UPLOAD = "101m"
# How long nginx may finish the requests it holds at a stop, then gunicorn its own; together
# under the 30 s most platforms wait between SIGTERM and SIGKILL.
NGINX_STOP_SECONDS = 10
GUNICORN_STOP_SECONDS = 15
PR_SET_PDEATHSIG = 1


# nginx's error lines: "2026/12/07 11:40:29 [error] 7378#7378: *2 upstream prematurely closed ..."
NGINX_ERROR_LINE = re.compile(
    r"(?P<date>\d{4}/\d\d/\d\d) (?P<clock>[\d:]+) \[(?P<level>\w+)\] (?:[\d#]+: )?(?P<message>.*)"
)
NGINX_LEVELS = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warn": "WARNING", "error": "ERROR"}


def json_logs() -> bool:
    try:
        return env_log_format() == "json"
    except ImproperlyConfigured as error:  # it names the variable, as the app would
        print(f"web: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def log_line(message: str, level: str = "ERROR", logger: str = "web") -> str:
    """A line of this launcher's (or nginx's) in the format of the application's own lines:
    with LOG_FORMAT=json every line of the web process is one JSON object."""
    if not json_logs():
        return f"{logger}: {message}"
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return json.dumps({"time": when, "level": level, "logger": logger, "message": message})


def nginx_line(line: str) -> str:
    """nginx's access lines are JSON already (deploy/nginx.conf); its error lines are text."""
    if not json_logs() or line.startswith("{"):
        return line
    match = NGINX_ERROR_LINE.match(line)
    if not match:
        return log_line(line, logger="web.front")
    return json.dumps({
        "time": f"{match['date'].replace('/', '-')} {match['clock']}",
        "level": NGINX_LEVELS.get(match["level"], "CRITICAL"),
        "logger": "web.front",
        "message": match["message"],
    })  # fmt: skip


def say(message: str, level: str = "ERROR") -> None:
    print(log_line(message, level), file=sys.stderr, flush=True)


def fail(message: str) -> NoReturn:
    say(message)
    sys.exit(1)


def trusted_proxies(spec: str) -> str:
    """FORWARDED_ALLOW_IPS (gunicorn's syntax: addresses or networks, or *) as geo lines."""
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    if "*" in entries:
        return "        default 1;"
    lines = ["        default 0;"]
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            fail(f"FORWARDED_ALLOW_IPS: {entry!r} is not an address or network")
        lines.append(f"        {network} 1;")
    return "\n".join(lines)


def nginx_config(*, port: int, socket: Path, run: Path, max_body: int, forwarded_allow_ips: str) -> str:
    values = {
        # A master started as root hands its workers to "nobody", who could not reach the socket.
        "USER": "user root;" if os.geteuid() == 0 else "# user: this process's own",
        "PORT": str(port),
        "SOCKET": str(socket),
        "RUN": str(run),
        "MAX_BODY": str(max_body),
        "MAX_UPLOAD": MAX_UPLOAD,
        "TRUSTED_PROXIES": trusted_proxies(forwarded_allow_ips),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    assert "@@" not in text, "a placeholder of deploy/nginx.conf has no value"
    return text


def _die_with_parent() -> None:
    # Run in the child before exec: if the launcher is killed outright, its children follow.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(command: list[str], env: dict[str, str] | None = None, *, relay: bool = False) -> subprocess.Popen:
    # Their own process group: a signal meant for the process group of this launcher (Ctrl-C,
    # a supervisor) reaches the launcher alone, which stops them in the right order.
    process = subprocess.Popen(  # noqa: S603
        command, env=env, process_group=0, preexec_fn=_die_with_parent,
        stderr=subprocess.PIPE if relay else None,
    )  # fmt: skip
    if relay:
        # nginx reopens /dev/stderr for its log lines: through a pipe they always land whole, even
        # where this process's stderr is a file that others write to at their own offsets.
        threading.Thread(target=_relay, args=(process.stderr,), daemon=True).start()
    return process


def _relay(stream: IO[bytes]) -> None:
    for line in stream:
        sys.stderr.write(nginx_line(line.decode(errors="replace").rstrip("\n")) + "\n")
        sys.stderr.flush()


def stop(process: subprocess.Popen, sig: int, seconds: float) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        fail(f"{name} must be an integer, not {raw!r}")


def main(gunicorn: list[str]) -> int:
    if not gunicorn:
        fail("usage: deploy/web.py gunicorn APP [gunicorn options]")
    port = env_int("PORT", 8000)
    front = os.environ.get("WEB_FRONT", "nginx").strip().lower()
    if front == "none":
        os.execvp(gunicorn[0], [*gunicorn, "--bind", f"0.0.0.0:{port}"])  # noqa: S606
    if front != "nginx":
        fail(f"WEB_FRONT must be nginx or none, not {front!r}")
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")
    if not nginx:
        fail(
            "nginx is not installed. The web process runs it in front of gunicorn so that slow clients "
            "cannot hold gunicorn's workers (apt-get install nginx-light). Only behind a proxy that "
            "buffers whole requests, set WEB_FRONT=none to run gunicorn alone."
        )

    run = Path(tempfile.mkdtemp(prefix="dreampixel-web-"))  # 0700: only this user reaches the socket
    try:
        return serve(gunicorn, nginx, run, port)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def serve(gunicorn: list[str], nginx: str, run: Path, port: int) -> int:
    socket = run / "gunicorn.sock"
    config = run / "nginx.conf"
    config.write_text(
        nginx_config(
            port=port,
            socket=socket,
            run=run,
            max_body=env_int("REQUEST_MAX_BYTES", 1024 * 1024),
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"),
        )
    )
    nginx_command = [nginx, "-c", str(config), "-e", "stderr", "-g", "daemon off;"]
    checked = subprocess.run([*nginx_command, "-t", "-q"], capture_output=True, text=True)  # noqa: S603
    if checked.returncode != 0:
        fail("nginx refused its configuration:\n" + checked.stderr)

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, request_stop)

    app = start([*gunicorn, "--bind", f"unix:{socket}"], env={**os.environ, "DREAMPIXEL_LOCAL_FRONT": "1"})
    front_process: subprocess.Popen | None = None
    code = 0
    try:
        while not stopping and app.poll() is None and not socket.exists():
            time.sleep(0.05)
        if not stopping and app.poll() is None:
            front_process = start(nginx_command, relay=True)
        while not stopping:
            if app.poll() is not None:
                code = app.returncode or 1
                say(f"gunicorn exited ({app.returncode}); stopping")
                break
            if front_process is not None and front_process.poll() is not None:
                code = front_process.returncode or 1
                say(f"nginx exited ({front_process.returncode}); stopping")
                break
            time.sleep(0.2)
    finally:
        if front_process is not None:
            stop(front_process, signal.SIGQUIT, NGINX_STOP_SECONDS)  # graceful: finish what it holds
        stop(app, signal.SIGTERM, GUNICORN_STOP_SECONDS)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
