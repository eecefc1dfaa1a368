"""What every benchmark shares: its own PostgreSQL databases, Django set-up, machine facts,
process memory, and the table + JSON it leaves behind.

Each script creates `bench_<name>_template` once (migrated), clones a fresh `bench_<name>`
from it for every run (a clone takes ~0.2 s, a migrate ~6 s) and drops both at the end. The
ledger's append-only trigger forbids DELETE, so a fresh database is how a run starts clean.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
# Redis DB 12 is the benchmarks' own; the test suite uses 13 and development 0.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PYTHON = sys.executable
# The project's settings plus the bench URL and static storage (bench/settings.py).
SETTINGS = "bench.settings"


# --- Databases ---------------------------------------------------------------------------


def database_url(name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def conninfo(name: str) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={name}"


def one_row(cursor: psycopg.Cursor) -> tuple:
    """The row of a statement that always returns one (SHOW, an aggregate, an UPDATE … RETURNING
    of a row that exists): psycopg's fetchone() may return None, this one raises instead."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def _admin(sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction: autocommit.
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _check_name(name: str) -> str:
    if not name.startswith("bench_") or not name.replace("_", "").isalnum():
        raise ValueError(f"Benchmark databases are named bench_*: {name!r}")
    return name


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')


def create_template(name: str, *, env: dict[str, str] | None = None) -> None:
    """A migrated database to clone runs from."""
    drop_database(name)
    _admin(f'CREATE DATABASE "{_check_name(name)}"')
    run_manage(["migrate", "--no-input", "-v0"], database=name, env=env)


def clone_database(template: str, name: str) -> None:
    drop_database(name)
    _admin(f'CREATE DATABASE "{_check_name(name)}" TEMPLATE "{_check_name(template)}"')


def manage_env(database: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a `manage.py` subprocess (migrate, reconcile, qcluster, gunicorn) gets."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env |= {
        "DATABASE_URL": database_url(database),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DREAMPIXEL_ENV": "development",
        # As in production: with DEBUG on, Django also records every query in memory.
        "DEBUG": "false",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    return env | (extra or {})


def run_manage(
    args: Sequence[str], *, database: str, env: dict[str, str] | None = None, ok_codes: Sequence[int] = (0,)
) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=manage_env(database, env),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in ok_codes:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def reconcile(database: str) -> dict:
    """The operators' own check (balance = sum of entries, balance_after chain, refunds, ...)."""
    # It exits 1 when it finds problems; its JSON says which.
    report = json.loads(run_manage(["reconcile", "--json"], database=database, ok_codes=(0, 1)))
    problems = {name: f["count"] for name, f in report["findings"].items() if f["count"]}
    return {"ok": report["ok"], "problems": problems}


def django_setup(database: str, *, env: dict[str, str] | None = None) -> None:
    """Point this process's Django at a bench database. Settings read the environment at import."""
    os.environ.pop("REDIS_URL", None)
    os.environ |= {"DATABASE_URL": database_url(database), "DJANGO_SETTINGS_MODULE": SETTINGS} | (env or {})
    os.environ["DREAMPIXEL_ENV"] = "development"
    os.environ["DEBUG"] = "false"  # as in production; DEBUG also records every query in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- The machine -------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        pg = one_row(conn.execute("SHOW server_version"))[0]
        sync_commit = one_row(conn.execute("SHOW synchronous_commit"))[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "pg_synchronous_commit": sync_commit,
    }


def loadavg() -> list[float]:
    # Other work on the machine (a test suite, another benchmark) shows up here: read it beside the figures.
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


# A run is marked as taken on a busy machine when the 1-minute load average before it is over
# half the CPUs: other work then competes with the benchmark for the cores. The load after it is
# recorded too, but it counts the run's own processes (gunicorn, wrk, workers, PostgreSQL keep
# both cores busy), so on its own it marked every run as busy.
BUSY_LOAD_PER_CPU = 0.5


def is_busy(load: Sequence[float]) -> bool:
    return load[0] > BUSY_LOAD_PER_CPU * (os.cpu_count() or 1)


def warn_if_busy() -> list[float]:
    """The load average now; says so when other work would skew the figures."""
    load = loadavg()
    if is_busy(load):
        print(f"  NOTE: load average {load[0]:.2f} before starting: a busy machine; other work lowers the figures.")
    return load


def load_record(before: list[float]) -> dict:
    """What each result JSON keeps about the load: before, after, and whether the run was busy."""
    after = loadavg()
    busy = is_busy(before)
    if busy:
        print(
            f"  BUSY MACHINE: load average {before[0]:.2f} before (and {after[0]:.2f} after, this run's own"
            " load included); read the ratios, not the absolutes."
        )
    return {"before": before, "after": after, "after_includes_this_run": True, "busy": busy}


def machine_line(info: dict) -> str:
    return (
        f"{info['nproc']} × {info['cpu']}, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"PostgreSQL {info['postgresql']} (synchronous_commit={info['pg_synchronous_commit']})"
    )


# --- Memory of a process tree ------------------------------------------------------------


def _proc_kb(pid: int, name: str, field: str) -> int:
    """A "Field:  123 kB" line of /proc/<pid>/<name>; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """`root` and every descendant, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class MemorySampler:
    """Samples a process tree's memory (and CPU time) in a thread. RSS counts pages shared after fork once per
    process, so the tree's sum of RSS overstates it; PSS splits shared pages between their
    sharers and sums to what the tree really holds. Each process's own high-water mark (VmHWM)
    is kept, even for children that exited meanwhile."""

    def __init__(self, root: int, interval: float = 0.25):
        self.root = root
        self.interval = interval
        self.peak_tree_rss_kb = 0
        self.peak_tree_pss_kb = 0
        self.peak_process_kb: dict[int, int] = {}
        self.cpu_seconds: dict[int, float] = {}
        self._cpu_baseline: dict[int, float] = {}
        self._machine_start = _machine_cpu()
        self._machine_end = self._machine_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        rss_total = pss_total = 0
        for pid in process_tree(self.root):
            rss = _proc_kb(pid, "status", "VmRSS")
            rss_total += rss
            pss_total += _proc_kb(pid, "smaps_rollup", "Pss")
            hwm = max(_proc_kb(pid, "status", "VmHWM"), rss)
            self.peak_process_kb[pid] = max(self.peak_process_kb.get(pid, 0), hwm)
            self.cpu_seconds[pid] = max(self.cpu_seconds.get(pid, 0.0), _cpu_seconds(pid))
        self.peak_tree_rss_kb = max(self.peak_tree_rss_kb, rss_total)
        self.peak_tree_pss_kb = max(self.peak_tree_pss_kb, pss_total)
        self._machine_end = _machine_cpu()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def peak_mb(self, exclude: Iterable[int] = ()) -> float:
        """The largest single process's peak RSS."""
        skip = set(exclude)
        return _mb(max((kb for pid, kb in self.peak_process_kb.items() if pid not in skip), default=0))

    def summary(self, exclude: Iterable[int] = ()) -> dict[str, float | int]:
        return {
            "largest_process_peak_rss_mb": self.peak_mb(exclude),
            "tree_peak_rss_sum_mb": _mb(self.peak_tree_rss_kb),
            "tree_peak_pss_mb": _mb(self.peak_tree_pss_kb),
            "processes_seen": len(self.peak_process_kb),
        }

    def mark(self) -> None:
        """Count CPU from now on (e.g. once start-up imports are done)."""
        self.sample()
        self._cpu_baseline = dict(self.cpu_seconds)
        self._machine_start = self._machine_end

    def cpu(self) -> dict[str, float]:
        """CPU seconds the tree used since mark(), and how busy the whole machine was meanwhile."""
        busy = self._machine_end[0] - self._machine_start[0]
        total = self._machine_end[1] - self._machine_start[1]
        used = sum(seconds - self._cpu_baseline.get(pid, 0.0) for pid, seconds in self.cpu_seconds.items())
        return {
            "tree_cpu_seconds": round(used, 2),
            "machine_busy_share": round(busy / total, 3) if total else 0.0,
        }


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


# --- Figures, the table and the JSON -----------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100 (what numpy calls "linear")."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "ran_at": datetime.now(UTC).isoformat(timespec="seconds"), **payload}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def git_commit() -> str:
    # Read-only: which code the figures belong to (a dirty tree is marked).
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.start
