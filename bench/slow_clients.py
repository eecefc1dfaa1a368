"""Slow clients: does /healthz answer within a second while N connections trickle their requests?

    .venv/bin/python bench/slow_clients.py [--slow 3 100 500] [--probes 9] [--workers 3]

The Procfile's `web` line runs as a platform runs it (three sync workers by default), once with
WEB_FRONT=none (gunicorn alone on $PORT: what the Procfile ran before nginx was put in front, and what runs
behind a front that does not buffer) and once as it is now (nginx in front, deploy/web.py). N
connections send headers or a body one byte every half second (tests/slowclients.py); then a
new connection asks /healthz every 0.3 s. A check passes when it answers 200 within one second.
No database is touched (development settings, /healthz only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.procfile import procfile_web
from tests.slowclients import probe_while_slow


def run(front: str, slow: int, probes: int, workers: int) -> dict:
    env = {"DREAMPIXEL_ENV": "development", "DEBUG": "false", "WEB_CONCURRENCY": str(workers), "WEB_FRONT": front}
    with procfile_web(env) as port:
        answers, still_open = probe_while_slow(port, slow=slow, probes=probes)
    answered = [a for a in answers if a is not None]
    return {
        "front": front,
        "slow_connections": slow,
        "still_open_at_end": still_open,
        "checks": probes,
        "passed": len(answered),
        "median_ms": round(statistics.median(answered) * 1000, 1) if answered else None,
        "max_ms": round(max(answered) * 1000, 1) if answered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, nargs="+", default=[3, 100, 500])
    parser.add_argument("--probes", type=int, default=9)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()

    started = time.monotonic()
    before = common.warn_if_busy()
    rows = [run(front, slow, args.probes, args.workers) for front in ("none", "nginx") for slow in args.slow]
    labels = {"none": "gunicorn alone (WEB_FRONT=none)", "nginx": "Procfile web (nginx in front)"}
    print(
        common.table(
            ["front", "slow conns", "open at end", "/healthz ≤ 1 s", "median ms", "max ms", ""],
            [
                (
                    labels[r["front"]],
                    r["slow_connections"],
                    r["still_open_at_end"],
                    f"{r['passed']} of {r['checks']}",
                    r["median_ms"] if r["median_ms"] is not None else "-",
                    r["max_ms"] if r["max_ms"] is not None else "-",
                    common.verdict(r["passed"] == r["checks"]) if r["front"] == "nginx" else "",
                )
                for r in rows
            ],
        )
    )
    path = common.write_results(
        "slow_clients",
        {
            "machine": common.machine(),
            "commit": common.git_commit(),
            "load": common.load_record(before),
            "workers": args.workers,
            "runs": rows,
        },
    )
    print(f"\n{time.monotonic() - started:.0f} s; wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
