"""Run work in many threads released at the same moment, as racing requests or workers are."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # the outcome under test
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def jobs_start_in_threads(jobs: list, *, threads: int = 1) -> list[threading.Thread]:
    """Run the jobs as workers would, each thread a share of them in order; started, not joined."""
    from generation.services import job_run

    def worker(chunk: list) -> None:
        try:
            for job in chunk:
                job_run(job_id=job.id)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker, args=(jobs[i::threads],)) for i in range(threads)]
    for thread in pool:
        thread.start()
    return pool


def jobs_run_in_threads(jobs: list, *, threads: int = 3) -> None:
    """The same, waited for: every job has been run when it returns."""
    pool = jobs_start_in_threads(jobs, threads=threads)
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool)
