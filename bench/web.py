"""Web: requests per second and p95 latency under gunicorn, each page against a minimal view.

    .venv/bin/python bench/web.py [--seconds 8] [--rounds 2] [--connections 16] [--workers 2]

One gunicorn (`-w 2`, sync workers, as the Procfile runs it) serves the project with
DEBUG=false, the production static storage (collectstatic into a temporary directory) and the
cache on Redis (DB 12; sessions are read from it), plus one extra URL from bench/urls_web.py:
`/bench/minimal/`, a view that returns "ok" behind the same middleware, and `/bench/minimal/signed-in/`, the same behind `login_required` (not a
target: it shows what loading the session and the user costs every signed-in page). wrk
(Debian package `wrk`) loads each URL in turn, with the cookies a signed-in browser sends (the
session, and the CSRF cookie the first page set), in
interleaved rounds so the pages and the baseline see the same machine. The pages: the job
status poll of an open job page (a job running for five minutes, polled with the URL the page
holds, which says what it shows: nothing new, so 204 and no body), the same fragment rendered
(what a poll that finds a change gets), the gallery of a user with 50 finished images (first
page: 24), and the create page. Queries per request are
counted once per URL with Django's test client in this process, on the same database. The
gunicorn workers' peak RSS (and the tree's PSS) is sampled from /proc throughout, and the CPU
each URL's run cost every process it went through (gunicorn, the database's PostgreSQL backends,
Redis, wrk) is read from /proc before and after it, per request. Each page is
also reported as a share of the signed-in minimal view, with the targets of docs/benchmarks.md: the status
poll at least 60 % of it, the gallery at least 40 %.
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

# BENCH_WEB_DATABASE names the database (bench_*), so two people can run it on one server.
DATABASE = os.environ.get("BENCH_WEB_DATABASE", "bench_web")
# Each page against the signed-in minimal view (the floor every signed-in page pays),
# measured in the same run. The signed-in floor itself is reported against the anonymous view.
# The status fragment is measured as an open job page polls it (the URL in the page's hx-get,
# which says what the page shows: a job with nothing new answers 204, no body) and rendered (the
# answer to a poll that finds a change, once per state or pace).
POLL = "job status poll (nothing new)"
RENDERED = "job status fragment, rendered"
SIGNED_IN_TARGETS = {POLL: 0.60, "gallery (50 items)": 0.40}
GALLERY_ITEMS = 50
LUA = common.ROOT / "bench" / "wrk_report.lua"
# The pages, in the order they are loaded. Targets are against the signed-in floor above: what a
# signed-in page adds, not what signing in costs. The share of the anonymous view is still shown.
PAGES = [
    "minimal view (baseline)",
    "minimal view, signed in",  # for reading the rest: what the session + user lookups cost
    POLL,
    RENDERED,
    "gallery (50 items)",
    "create page",
]


def app_env(static_root: str, media_root: str) -> dict[str, str]:
    """What both gunicorn and this process run with."""
    return {
        "DREAMPIXEL_ENV": "development",
        "DEBUG": "false",
        "RATELIMIT_ENABLE": "false",
        # As in production: the cache (and so the cached_db sessions) on Redis, here DB 12.
        "REDIS_URL": common.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1",
        "BENCH_STATIC_ROOT": static_root,
        "MEDIA_ROOT": media_root,
        "LOCAL_RENDERER_ENABLED": "true",
        "LOCAL_RENDER_DELAY_MS": "0",
        "LOG_LEVEL": "WARNING",
    }


def flush_redis() -> None:
    import redis

    redis.from_url(common.REDIS_URL).flushdb()


# --- Seeding through the app's own services ----------------------------------------------


def seed() -> dict[str, str]:
    """A user with 50 finished images and one running job; returns the URLs and the cookies."""
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from billing.services import credits_grant
    from generation.models import AIModel, Job
    from generation.services import job_create, job_run

    user = User.objects.create_user(email="gallery@bench.example", password=None)
    model = AIModel.objects.get(key="local-preview")
    credits_grant(user=user, amount=model.credit_cost * (GALLERY_ITEMS + 1), key=f"purchase:bench-web:{user.pk}")
    for n in range(GALLERY_ITEMS):
        job = job_create(user=user, model=model, prompt=f"Lighthouse at dusk, study {n}", aspect_ratio="square", seed=n)
        job_run(job_id=job.id)  # the local renderer, in this process: no queue needed
    if Job.objects.filter(user=user, status=Job.Status.SUCCEEDED).count() != GALLERY_ITEMS:
        raise RuntimeError("seeding the gallery failed: not every job succeeded")
    # What a polling page looks at: a job a worker is running (as the worker's claim leaves it).
    # Five minutes in (a video, say): the page polls at its slowest, steady pace all run long.
    running = job_create(user=user, model=model, prompt="Still rendering", aspect_ratio="square", seed=99)
    now = timezone.now()
    Job.objects.filter(pk=running.pk).update(
        status=Job.Status.RUNNING,
        created_at=now - timedelta(minutes=5),
        started_at=now - timedelta(minutes=5),
        lease_until=now + timedelta(hours=1),
        attempts=1,
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    # A browser polling the status fragment has opened the job page first, which set the CSRF
    # cookie (its forms carry the token); without it every request would make a new one.
    job_page = client.get(f"/jobs/{running.pk}/")
    if job_page.status_code != 200:
        raise RuntimeError("the job page did not open for the seeded user")
    poll = re.search(r'hx-get="([^"]*/status/[^"]*)"', job_page.content.decode())
    if poll is None:
        raise RuntimeError("the job page does not poll its status")
    return {
        "cookie": "; ".join(f"{name}={client.cookies[name].value}" for name in ("sessionid", "csrftoken")),
        "minimal view (baseline)": "/bench/minimal/",
        "minimal view, signed in": "/bench/minimal/signed-in/",
        POLL: html.unescape(poll.group(1)),
        RENDERED: f"/jobs/{running.pk}/status/",
        "gallery (50 items)": "/gallery/",
        "create page": "/create/",
    }


def count_queries(urls: dict[str, str], cookie: str) -> dict[str, int]:
    """Queries one request makes, after a warm-up request (first-use caches excluded)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies.load(cookie)
    counts = {}
    for name, url in urls.items():
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != (204 if name == POLL else 200):
            raise RuntimeError(f"{url} answered {response.status_code} in the test client")
        counts[name] = len(captured.captured_queries)
    return counts


# --- gunicorn and wrk --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        str(Path(common.PYTHON).with_name("gunicorn")), "dreampixel.wsgi", "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}", "--worker-class", "sync", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=common.ROOT, env=common.manage_env(DATABASE, env), stdout=output, stderr=subprocess.STDOUT
        )


def get(port: int, url: str, cookie: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", url, headers={"Cookie": cookie})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(port: int, cookie: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if get(port, "/bench/minimal/", cookie)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


# --- CPU per request: every process a request goes through ----------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process ended
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def cpu_by_process(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far, per process, of the gunicorn tree, the bench database's PostgreSQL
    backends, Redis, and this script's finished children (wrk, under the key 0)."""
    import psycopg
    import redis

    with psycopg.connect(common.conninfo(DATABASE), autocommit=True) as conn:
        own = conn.info.backend_pid
        backends = [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DATABASE])]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    redis_pid = int(redis.from_url(common.REDIS_URL).info("server")["process_id"])
    return {
        "gunicorn": {pid: _cpu_seconds(pid) for pid in [server_pid, *_children(server_pid)]},
        "postgres": {pid: _cpu_seconds(pid) for pid in backends if pid != own},
        "redis": {redis_pid: _cpu_seconds(redis_pid)},
        "wrk": {0: children.ru_utime + children.ru_stime},
    }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    # A process that started during the run counts whole; one that ended (a database connection
    # past its CONN_MAX_AGE) is left out, rather than counted as negative.
    return {kind: sum(seconds - before[kind].get(pid, 0.0) for pid, seconds in after[kind].items()) for kind in after}


def wrk(port: int, url: str, cookie: str, seconds: float, connections: int) -> dict:
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(LUA),
        "-H", f"Cookie: {cookie}", f"http://127.0.0.1:{port}{url}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    result = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(result[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx_3xx"))
    if errors:
        raise RuntimeError(f"wrk saw {errors} errors on {url}: {result}")
    return result


def measure(
    port: int, urls: dict[str, str], cookie: str, options: argparse.Namespace, server_pid: int
) -> dict[str, list[dict]]:
    names = PAGES
    for name in names:  # warm every worker's templates and connections first
        wrk(port, urls[name], cookie, 2, options.connections)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_number in range(options.rounds):
        # Interleaved, and the order flipped every round, so drift hits every URL alike.
        for name in names if round_number % 2 == 0 else reversed(names):
            before = cpu_by_process(server_pid)
            result = wrk(port, urls[name], cookie, options.seconds, options.connections)
            after = cpu_by_process(server_pid)
            result["cpu_seconds"] = cpu_used(before, after)
            results[name].append(result)
            rate = result["requests"] / (result["duration_us"] / 1e6)
            print(
                f"  round {round_number + 1}: {name:<24} {rate:8,.0f} req/s  p95 {result['p95_us'] / 1000:6.1f} ms",
                flush=True,
            )
    return results


def summarize(results: dict[str, list[dict]], queries: dict[str, int]) -> list[dict]:
    def rate(runs: list[dict]) -> float:
        return sum(r["requests"] for r in runs) / sum(r["duration_us"] / 1e6 for r in runs)

    baseline = rate(results["minimal view (baseline)"])
    signed_in = rate(results["minimal view, signed in"])
    rows = []
    for name in PAGES:
        runs = results[name]
        per_second = rate(runs)
        share = per_second / baseline
        floor_target = SIGNED_IN_TARGETS.get(name)
        share_of_floor = per_second / signed_in
        rows.append(
            {
                "page": name,
                "requests_per_second": round(per_second, 1),
                "p50_ms": round(statistics.median(r["p50_us"] for r in runs) / 1000, 2),
                "p95_ms": round(statistics.median(r["p95_us"] for r in runs) / 1000, 2),
                "p99_ms": round(statistics.median(r["p99_us"] for r in runs) / 1000, 2),
                "share_of_minimal": round(share, 3),
                "queries_per_request": queries[name],
                "share_of_signed_in_minimal": round(share_of_floor, 3),
                "target_share_of_signed_in": floor_target,
                "verdict_signed_in": common.verdict(share_of_floor >= floor_target) if floor_target else "-",
                "requests": sum(r["requests"] for r in runs),
                # Milliseconds of CPU per request, by process: steadier than requests per second
                # when other work shares the machine.
                "cpu_ms_per_request": {
                    key: round(1000 * sum(r["cpu_seconds"][key] for r in runs) / sum(r["requests"] for r in runs), 3)
                    for key in runs[0]["cpu_seconds"]
                },
            }
        )
    return rows


HEADERS = [
    "page", "req/s", "p50 ms", "p95 ms", "share of minimal", "share of signed-in", "target", "result",
    "queries/req",
]  # fmt: skip


def table_row(row: dict) -> list:
    return [
        row["page"],
        row["requests_per_second"],
        row["p50_ms"],
        row["p95_ms"],
        f"{row['share_of_minimal']:.1%}",
        f"{row['share_of_signed_in_minimal']:.1%}",
        f">= {row['target_share_of_signed_in']:.0%}" if row["target_share_of_signed_in"] else "-",
        row["verdict_signed_in"],
        row["queries_per_request"],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each wrk run (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the URLs (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")

    info = common.machine()
    print(f"Web benchmark on {common.machine_line(info)}")
    load_before = common.warn_if_busy()
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    env = app_env(str(workdir / "static"), str(workdir / "media"))
    server = None
    flush_redis()
    try:
        common.drop_database(DATABASE)
        common.create_template(DATABASE, env=env)  # a plain migrated database; no clones needed here
        common.run_manage(["collectstatic", "--no-input", "-v0"], database=DATABASE, env=env)
        common.django_setup(DATABASE, env=env)
        with common.Stopwatch() as seeding:
            urls = seed()
        cookie = urls.pop("cookie")
        queries = count_queries(urls, cookie)
        print(f"  seeded {GALLERY_ITEMS} finished jobs in {seeding.seconds:.1f} s; queries per request: {queries}")

        from django.db import connections

        connections.close_all()
        port = free_port()
        log = workdir / "gunicorn.log"
        server = start_gunicorn(port, options.workers, env, log)
        wait_ready(port, cookie, server, log)
        for url in urls.values():  # signed in, and no redirect to the login page
            status, body = get(port, url, cookie)
            if status not in (200, 204):
                raise RuntimeError(f"{url} answered {status} under gunicorn: {body[:300]!r}")
        with common.MemorySampler(server.pid) as memory:
            results = measure(port, urls, cookie, options, server.pid)
            memory.sample()
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        from django.db import connections

        connections.close_all()
        if not options.keep:
            common.drop_database(DATABASE)
        flush_redis()  # sessions, and the seeding jobs' tasks (no cluster runs here)
        shutil.rmtree(workdir, ignore_errors=True)

    rows = summarize(results, queries)
    memory_summary = memory.summary(exclude=[server.pid])
    print()
    print(common.table(HEADERS, [table_row(r) for r in rows]))
    print("\nCPU per request (ms), by process:")
    kinds = list(rows[0]["cpu_ms_per_request"])
    print(
        common.table(
            ["page", *kinds, "all"],
            [[r["page"], *(r["cpu_ms_per_request"][k] for k in kinds), round(sum(r["cpu_ms_per_request"].values()), 3)]
             for r in rows],
        )
    )  # fmt: skip
    print(
        f"\nMemory: peak RSS of one gunicorn worker {memory_summary['largest_process_peak_rss_mb']} MB; gunicorn "
        f"tree ({options.workers} workers + master) peak PSS {memory_summary['tree_peak_pss_mb']} MB."
    )
    path = common.write_results(
        "web",
        {
            "machine": info,
            "commit": common.git_commit(),
            "load_average": common.load_record(load_before),
            "setup": {
                "server": f"gunicorn -w {options.workers} (sync), DEBUG=false, production static storage",
                "load": f"wrk -t2 -c{options.connections} -d{options.seconds:g}s, {options.rounds} interleaved rounds",
                "gallery_items": GALLERY_ITEMS,
            },
            "pages": rows,
            "gunicorn_memory": memory_summary,
            "rounds": {name: runs for name, runs in results.items()},
        },
    )
    print(f"Wrote {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    os.chdir(common.ROOT)
    sys.exit(main())
