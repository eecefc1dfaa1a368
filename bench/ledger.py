"""Ledger: charges per second on one hot account, the real service against raw SQL.

    .venv/bin/python bench/ledger.py [--seconds 4] [--repeat 3] [--workers 1,8,32] [--mode processes]

Both sides write a charge the way the service claims to, on PostgreSQL, one connection per
worker: BEGIN; one conditional `UPDATE ... SET balance = balance - n WHERE ... AND balance - n
>= 0 RETURNING id, balance` (it locks the row, checks the floor and moves the balance); one
INSERT of the entry; COMMIT. The service side is `billing.services.credits_charge` (the same
four statements, with the ORM's objects around them; a replayed key is answered when its INSERT
meets the unique key); the raw side is exactly those statements through psycopg, the limit for this shape on this machine (every
writer waits for the row lock, held across the commit's WAL flush). The target: the service at
least 50 % of raw SQL at 8 workers.

Workers are processes by default (threads share one GIL and would measure Python's lock, not
the ledger's); `--mode threads` runs both sides in threads instead. Every run starts from a
fresh clone of a migrated database, and is checked afterwards: balance == sum of entries,
balance >= 0, no duplicate keys, balance_after is the running sum, and `reconcile --json`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

# BENCH_LEDGER_DATABASE names the databases (bench_*), so two people can run it on one server.
DATABASE = os.environ.get("BENCH_LEDGER_DATABASE", "bench_ledger")
TEMPLATE = f"{DATABASE}_template"
SEED_CREDITS = 1_000_000_000  # never the limit: a refused charge would end a worker's run early
TARGET_SHARE_AT_8 = 0.5

# The shape billing.services._post claims: one conditional UPDATE that locks the row, checks the
# floor and moves the balance, returning the new balance; then one INSERT of the entry.
RAW_UPDATE = """
    UPDATE billing_creditaccount SET balance = balance - 1, updated_at = clock_timestamp()
    WHERE user_id = %s AND balance - 1 >= 0 RETURNING id, balance
"""
RAW_INSERT = """
    INSERT INTO billing_ledgerentry
        (account_id, kind, amount, balance_after, idempotency_key, reference, refund_of_id,
         actor_type, actor_id, memo, created_at)
    VALUES (%s, 'charge', -1, %s, %s, '', NULL, 'user', %s, '', clock_timestamp())
"""

INVARIANTS = """
    WITH sums AS (
        SELECT a.id, a.balance, COALESCE(SUM(e.amount), 0) AS total, COUNT(e.id) AS entries,
               COUNT(DISTINCT e.idempotency_key) AS keys
        FROM billing_creditaccount a LEFT JOIN billing_ledgerentry e ON e.account_id = a.id
        GROUP BY a.id, a.balance
    ), chain AS (
        SELECT balance_after,
               SUM(amount) OVER (PARTITION BY account_id ORDER BY id ROWS UNBOUNDED PRECEDING) AS running
        FROM billing_ledgerentry
    )
    SELECT
        (SELECT COUNT(*) FROM sums WHERE balance <> total) AS balance_not_sum,
        (SELECT COUNT(*) FROM sums WHERE balance < 0) AS negative_balance,
        (SELECT COALESCE(SUM(entries - keys), 0) FROM sums) AS duplicate_keys,
        (SELECT COUNT(*) FROM chain WHERE balance_after <> running) AS broken_chain,
        (SELECT COUNT(*) FROM billing_ledgerentry WHERE kind = 'charge') AS charges
"""


# --- The two sides (each runs in its own worker, with its own connection) ---------------


def _sleep_until(moment: float) -> None:
    time.sleep(max(moment - time.time(), 0))


def service_worker(user_id: int, tag: str, start: float, seconds: float) -> tuple[int, float]:
    """Charges done, and when the last one ended."""
    from django.db import connection

    from accounts.models import User
    from billing.services import credits_charge

    user = User.objects.get(pk=user_id)  # connects before the clock starts
    done = 0
    _sleep_until(start)
    deadline = start + seconds
    try:
        while time.time() < deadline:
            credits_charge(user=user, amount=1, key=f"charge:bench:{tag}:{done}")
            done += 1
        ended = time.time()
    finally:
        connection.close()
    return done, ended


def raw_worker(user_id: int, tag: str, start: float, seconds: float) -> tuple[int, float]:
    done = 0
    with psycopg.connect(common.conninfo(DATABASE)) as conn:
        _sleep_until(start)
        deadline = start + seconds
        while time.time() < deadline:
            key = f"charge:bench:{tag}:{done}"
            with conn.transaction():
                account_id, balance = common.one_row(conn.execute(RAW_UPDATE, (user_id,)))
                conn.execute(RAW_INSERT, (account_id, balance, key, user_id))
            done += 1
        ended = time.time()
    return done, ended


SIDES = {"service": service_worker, "raw": raw_worker}


def _process_target(side: str, queue, *args) -> None:
    queue.put(SIDES[side](*args))


def run_workers(side: str, workers: int, user_id: int, seconds: float, mode: str) -> tuple[int, float]:
    """Start `workers` workers together; returns (charges done, seconds measured)."""
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's socket
    lead = 1.0 + workers * 0.05  # time for every worker to connect before the clock starts
    start = time.time() + lead
    results: list[tuple[int, float]]
    if mode == "processes":
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        procs = [
            context.Process(target=_process_target, args=(side, queue, user_id, f"{side}{workers}-{n}", start, seconds))
            for n in range(workers)
        ]
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=lead + seconds + 120) for _ in procs]
        for proc in procs:
            proc.join()
            if proc.exitcode:
                raise RuntimeError(f"a {side} worker failed with exit code {proc.exitcode}")
    else:
        results = []
        lock = threading.Lock()

        def target(n: int) -> None:
            value = SIDES[side](user_id, f"{side}{workers}-{n}", start, seconds)
            with lock:
                results.append(value)

        threads = [threading.Thread(target=target, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(results) != workers:
            raise RuntimeError(f"{workers - len(results)} {side} worker thread(s) failed")
    # The last charge may end a little after the deadline: the time counted runs to the last end.
    return sum(done for done, _ in results), max(ended for _, ended in results) - start


# --- One run: fresh database, seed, charge, check ----------------------------------------


def seed() -> int:
    from accounts.models import User
    from billing.services import credits_grant

    user = User.objects.create_user(email="hot-account@bench.example", password=None)
    credits_grant(user=user, amount=SEED_CREDITS, key=f"purchase:bench-seed:{user.pk}")
    return user.pk


def check_invariants(expected_charges: int) -> tuple[dict, float]:
    with psycopg.connect(common.conninfo(DATABASE)) as conn:
        row = common.one_row(conn.execute(INVARIANTS))
    names = ("balance_not_sum", "negative_balance", "duplicate_keys", "broken_chain")
    violations = {name: int(value) for name, value in zip(names, row[:4], strict=True) if value}
    if int(row[4]) != expected_charges:
        violations["charges_lost_or_extra"] = abs(int(row[4]) - expected_charges)
    with common.Stopwatch() as reconciling:
        reconciled = common.reconcile(DATABASE)
    violations |= {f"reconcile:{name}": count for name, count in reconciled["problems"].items()}
    return violations, reconciling.seconds


def one_run(side: str, workers: int, seconds: float, mode: str) -> dict:
    from django.db import connections

    connections.close_all()
    common.clone_database(TEMPLATE, DATABASE)
    user_id = seed()
    charges, elapsed = run_workers(side, workers, user_id, seconds, mode)
    violations, reconcile_seconds = check_invariants(charges)
    rate = charges / elapsed
    print(
        f"  {side:<8} {workers:>3} workers: {rate:9,.0f} charges/s  violations: {violations or 'none'} "
        f"(reconcile took {reconcile_seconds:.1f} s)",
        flush=True,
    )
    return {
        "side": side,
        "workers": workers,
        "charges": charges,
        "seconds": round(elapsed, 3),
        "per_second": round(rate, 1),
        "violations": violations,
        "reconcile_seconds": round(reconcile_seconds, 2),
    }


def summarize(runs: list[dict], worker_counts: list[int]) -> list[dict]:
    summary = []
    for workers in worker_counts:
        rates = {
            side: statistics.median(r["per_second"] for r in runs if r["side"] == side and r["workers"] == workers)
            for side in SIDES
        }
        share = rates["service"] / rates["raw"]
        summary.append(
            {
                "workers": workers,
                "service_per_second": round(rates["service"], 1),
                "raw_per_second": round(rates["raw"], 1),
                "share_of_raw": round(share, 3),
                "verdict": common.verdict(share >= TARGET_SHARE_AT_8) if workers == 8 else "-",
                "runs_with_violations": sum(bool(r["violations"]) for r in runs if r["workers"] == workers),
            }
        )
    return summary


HEADERS = ["workers", "service/s", "raw SQL/s", "share of raw", "target", "result", "runs with violations"]


def table_row(row: dict) -> list:
    target = f">= {TARGET_SHARE_AT_8:.0%}" if row["workers"] == 8 else "-"
    return [
        row["workers"],
        row["service_per_second"],
        row["raw_per_second"],
        f"{row['share_of_raw']:.1%}",
        target,
        row["verdict"],
        row["runs_with_violations"],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run (default 4)")
    parser.add_argument("--workers", default="1,8,32", help="comma-separated worker counts (default 1,8,32)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per side and worker count; the median counts (default 3)"
    )
    parser.add_argument("--mode", choices=("processes", "threads"), default="processes")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    options = parser.parse_args()
    worker_counts = [int(n) for n in options.workers.split(",")]

    info = common.machine()
    print(f"Ledger benchmark on {common.machine_line(info)}; {options.mode}, {options.seconds:g} s per run")
    load_before = common.warn_if_busy()
    common.create_template(TEMPLATE)
    common.django_setup(DATABASE)
    runs = []
    try:
        for repeat in range(options.repeat):
            for workers in worker_counts:
                # The order flips every time, so neither side always runs on the warmer machine.
                order = ("raw", "service") if (repeat + worker_counts.index(workers)) % 2 else ("service", "raw")
                for side in order:
                    runs.append(one_run(side, workers, options.seconds, options.mode))
    finally:
        from django.db import connections

        connections.close_all()
        if not options.keep:
            common.drop_database(DATABASE)
            common.drop_database(TEMPLATE)

    summary = summarize(runs, worker_counts)
    violated = [r for r in runs if r["violations"]]
    print()
    print(common.table(HEADERS, [table_row(row) for row in summary]))
    print(
        f"\nInvariants: {common.verdict(not violated)} - zero violations required after every run "
        f"({len(violated)} of {len(runs)} runs had violations). Rates are the median of {options.repeat} run(s)."
    )
    path = common.write_results(
        "ledger",
        {
            "machine": info,
            "commit": common.git_commit(),
            "mode": options.mode,
            "seconds_per_run": options.seconds,
            "targets": {"share_of_raw_at_8_workers": TARGET_SHARE_AT_8, "invariant_violations": 0},
            "repeat": options.repeat,
            "load_average": common.load_record(load_before),
            "summary": summary,
            "invariants": common.verdict(not violated),
            "runs": runs,
        },
    )
    print(f"Wrote {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    os.chdir(common.ROOT)
    sys.exit(main())
