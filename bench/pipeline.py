"""Pipeline: jobs through a real `qcluster` against a fake Replicate with a set latency.

    .venv/bin/python bench/pipeline.py [--jobs 500] [--workers 4] [--brokers orm,redis] [--latency 0.2] [--hold 0]
    .venv/bin/python bench/pipeline.py --jobs 200 --latency 60   # minute-long predictions
    .venv/bin/python bench/pipeline.py --jobs 200 --latency 2    # two-second predictions

(`--workers 4,8` adds runs with 8 workers: about 4 minutes in all instead of 2.)

For each broker (django-q2's ORM broker on PostgreSQL, then Redis DB 12) and worker count, a
fresh database gets one Replicate catalog model and a user with credits; `--jobs` jobs are
created with `generation.services.job_create`, which charges each one and enqueues its task on
commit through the app's own path (for the Redis run this process's django-q is pointed at
Redis, so nothing goes to the ORM queue). Then `manage.py qcluster` starts with Q_WORKERS
workers and drains the queue: the jobs are queued *before* the cluster starts, so the rate is
measured from the first job's `started_at` to the last job's `finished_at`.

- jobs/s against the provider-bound rate, workers ÷ provider latency (what a design that holds a
  worker per running prediction can reach at best); a task now gives its worker back once the
  prediction is recorded, and the poller (no PUBLIC_BASE_URL here) finishes the jobs;
- the drain time (first start to last finish) and, per job, the finish lag: from the prediction
  being done at the fake to the job being finished (the poller's cadence plus the finishing);
- our overhead per job: (finished_at - started_at) - the prediction's own duration at the fake,
  at p50 and p95, and the part before the create call;
- the qcluster's CPU time per job;
- the qcluster process tree's peak memory (PSS of the tree, RSS of its largest process);
- then `--probe` single jobs on the idle cluster: enqueue-to-start latency (the broker's pickup).

`--hold S` makes the fake hold a create sent with `Prefer: wait` until the prediction is done
(up to S seconds), as Replicate does; those figures go to bench/results/pipeline-hold.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from fakes.replicate import DEFAULT_TOKEN, FakeReplicate

TEMPLATE = "bench_pipeline_template"
DATABASE = "bench_pipeline"
PREDICT_SECONDS = 0.2  # --latency
TARGET_SHARE_OF_IDEAL = 0.70
# From --latency 10 on, the target is the drain time: 200 jobs of 60 s in under 90 s.
LONG_LATENCY = 10.0
TARGET_DRAIN_FACTOR = 1.5


def app_env(fake_url: str, media_root: str, workers: int) -> dict[str, str]:
    return {
        "REPLICATE_API_TOKENS": DEFAULT_TOKEN,
        "REPLICATE_BASE_URL": fake_url,
        "REPLICATE_CREATE_WAIT": "1",
        "LOCAL_RENDERER_ENABLED": "false",
        "MEDIA_ROOT": media_root,
        "Q_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
    }


# --- Seeding and enqueueing through the app ----------------------------------------------


def seed(jobs: int):
    from accounts.models import User
    from billing.services import credits_grant
    from generation.models import AIModel

    model = AIModel.objects.create(
        key="bench-flux",
        name="Bench Flux",
        kind="image",
        provider=AIModel.Provider.REPLICATE,
        provider_ref="black-forest-labs/flux-schnell",
        credit_cost=1,
        aspect_ratios={"square": "1:1"},
    )
    user = User.objects.create_user(email="pipeline@bench.example", password=None)
    credits_grant(user=user, amount=jobs * 2, key=f"purchase:bench-pipeline:{user.pk}")
    return user, model


def use_broker(broker: str) -> None:
    """Point this process's django-q at the run's broker; job_create's on-commit enqueue follows."""
    from django_q.conf import Conf

    if broker == "redis":
        Conf.ORM, Conf.REDIS = None, common.REDIS_URL
    else:
        Conf.ORM, Conf.REDIS = "default", {}


def create_jobs(user, model, count: int, prefix: str) -> list:
    from generation.services import job_create

    return [
        job_create(user=user, model=model, prompt=f"{prefix} lighthouse {n}", aspect_ratio="square", seed=n).pk
        for n in range(count)
    ]


def queue_length() -> int:
    from django_q.brokers import get_broker

    return get_broker().queue_size()


# --- The cluster -------------------------------------------------------------------------


def start_cluster(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen(
            [common.PYTHON, "manage.py", "qcluster"],
            cwd=common.ROOT,
            env=common.manage_env(DATABASE, env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop_cluster(cluster: subprocess.Popen) -> None:
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=30)
    except subprocess.TimeoutExpired:
        cluster.kill()
        cluster.wait()


def wait_final(job_ids: list, timeout: float, cluster: subprocess.Popen, log: Path, memory) -> None:
    """Wait for every job to end; CPU is counted from the first claim (start-up imports excluded)."""
    from generation.models import Job

    deadline = time.monotonic() + timeout
    marked = False
    while time.monotonic() < deadline:
        if not marked and Job.objects.filter(pk__in=job_ids).exclude(status=Job.Status.QUEUED).exists():
            memory.mark()
            marked = True
        if Job.objects.filter(pk__in=job_ids, status__in=Job.FINAL_STATUSES).count() == len(job_ids):
            memory.sample()
            return
        if cluster.poll() is not None:
            raise RuntimeError(f"qcluster exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"the jobs did not finish within {timeout:.0f} s; qcluster log:\n{log.read_text()[-3000:]}")


# --- Figures -----------------------------------------------------------------------------


def job_timings(job_ids: list, fake: FakeReplicate) -> list[dict]:
    """Per job: start, finish, and the overhead around the provider's own time."""
    from generation.models import Job

    rows = []
    for job in Job.objects.filter(pk__in=job_ids).values(
        "status", "attempts", "created_at", "started_at", "finished_at", "prediction_id"
    ):
        prediction = fake.predictions.get(job["prediction_id"])
        if prediction is None or job["started_at"] is None or job["finished_at"] is None:
            rows.append({"status": job["status"], "ok": False})
            continue
        created = prediction.created_at.timestamp()  # when the fake received the create call
        ready = created + prediction.seconds
        started, finished = job["started_at"].timestamp(), job["finished_at"].timestamp()
        rows.append(
            {
                "ok": job["status"] == "succeeded",
                "status": job["status"],
                "attempts": job["attempts"],
                "queued_s": started - job["created_at"].timestamp(),
                "queued_to_done_s": finished - job["created_at"].timestamp(),
                "started": started,
                "finished": finished,
                "overhead_s": (finished - started) - prediction.seconds,
                "before_create_s": created - started,
                "finish_lag_s": finished - ready,
            }
        )
    return rows


def ms(values: list[float], q: float) -> float:
    return round(common.percentile(values, q) * 1000, 1)


def summarize(rows: list[dict], workers: int) -> dict:
    good = [r for r in rows if r["ok"]]
    span = max(r["finished"] for r in good) - min(r["started"] for r in good)
    rate = len(good) / span
    ideal = workers / PREDICT_SECONDS
    overheads = [r["overhead_s"] for r in good]
    lags = [r["finish_lag_s"] for r in good]
    return {
        "jobs": len(rows),
        "succeeded": len(good),
        "ran_more_than_once": sum(r["attempts"] != 1 for r in good),
        "seconds": round(span, 2),
        "jobs_per_second": round(rate, 2),
        "ideal_jobs_per_second": round(ideal, 3),
        "share_of_ideal": round(rate / ideal, 3),
        "overhead_ms": {
            "p50": ms(overheads, 50),
            "p95": ms(overheads, 95),
            "mean": round(sum(overheads) / len(overheads) * 1000, 1),
        },
        "before_create_p50_ms": ms([r["before_create_s"] for r in good], 50),
        # From the prediction being done at the fake to the job being finished.
        "finish_lag_ms": {"p50": ms(lags, 50), "p95": ms(lags, 95), "max": ms(lags, 100)},
        "queued_p50_s": round(common.percentile([r["queued_s"] for r in good], 50), 2),
        "queued_to_done_p95_s": round(common.percentile([r["queued_to_done_s"] for r in good], 95), 2),
    }


def passes(run: dict) -> bool:
    if PREDICT_SECONDS >= LONG_LATENCY:
        return run["seconds"] < TARGET_DRAIN_FACTOR * PREDICT_SECONDS
    return run["share_of_ideal"] >= TARGET_SHARE_OF_IDEAL


def probe(user, model, count: int) -> dict:
    """Single jobs on an idle cluster, one at a time: how soon a queued task starts."""
    from generation.models import Job

    if not count:
        return {}
    pickups, totals = [], []
    for n in range(count):
        job_id = create_jobs(user, model, 1, f"probe {n}")[0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = Job.objects.filter(pk=job_id).values("status", "created_at", "started_at", "finished_at").get()
            if job["status"] in Job.FINAL_STATUSES:
                break
            time.sleep(0.02)
        if job["started_at"] and job["finished_at"]:
            pickups.append((job["started_at"] - job["created_at"]).total_seconds())
            totals.append((job["finished_at"] - job["created_at"]).total_seconds())
    return {
        "jobs": count,
        "enqueue_to_start_ms": {"p50": ms(pickups, 50), "p95": ms(pickups, 95)},
        "create_to_finish_ms": {"p50": ms(totals, 50), "p95": ms(totals, 95)},
    }


# --- One run -----------------------------------------------------------------------------


def one_run(broker: str, workers: int, options: argparse.Namespace, workdir: Path) -> dict:
    import redis
    from django.db import connections

    connections.close_all()
    common.clone_database(TEMPLATE, DATABASE)
    redis.from_url(common.REDIS_URL).flushdb()
    fake = FakeReplicate(predict_seconds=PREDICT_SECONDS, tokens={DEFAULT_TOKEN}, hold_waits=options.hold).start()
    env = app_env(fake.url, str(workdir / "media"), workers)
    if broker == "redis":
        env["REDIS_URL"] = common.REDIS_URL
    use_broker(broker)
    cluster = None
    try:
        user, model = seed(options.jobs + options.probe)
        with common.Stopwatch() as creating:
            job_ids = create_jobs(user, model, options.jobs, "drain")
        queued = queue_length()
        if queued != options.jobs:
            raise RuntimeError(f"{queued} tasks on the {broker} queue, expected {options.jobs}")
        log = workdir / f"qcluster-{broker}-{workers}.log"
        cluster = start_cluster(env, log)
        with common.MemorySampler(cluster.pid) as memory:
            wait_final(job_ids, 120 + 3 * PREDICT_SECONDS + options.jobs, cluster, log, memory)
            cpu = memory.cpu()
            summary = summarize(job_timings(job_ids, fake), workers)
            summary["probe"] = probe(user, model, options.probe)
            memory.sample()
        summary["predictions_created"] = fake.created_count
        summary["predictions_expected"] = options.jobs + options.probe
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        fake.stop()
        use_broker("orm")
        redis.from_url(common.REDIS_URL).flushdb()
    summary |= {
        "broker": broker,
        "workers": workers,
        "provider_seconds": PREDICT_SECONDS,
        "enqueue_seconds": round(creating.seconds, 2),
        "qcluster_memory": memory.summary(),
        "qcluster_cpu_ms_per_job": round(cpu["tree_cpu_seconds"] / options.jobs * 1000, 1),
        "machine_cpu_busy_during_drain": cpu["machine_busy_share"],
    }
    o = summary["overhead_ms"]
    print(
        f"  {broker:<5} {workers} workers: {summary['jobs_per_second']:6.2f} jobs/s "
        f"({summary['share_of_ideal']:.0%} of {summary['ideal_jobs_per_second']:g}), drained in "
        f"{summary['seconds']} s, finish lag p95 {summary['finish_lag_ms']['p95']} ms, overhead p50 {o['p50']} ms, "
        f"{summary['succeeded']}/{summary['jobs']} succeeded",
        flush=True,
    )
    return summary


def report_rows(runs: list[dict]) -> list[list]:
    rows = []
    for r in runs:
        memory = r["qcluster_memory"]
        rows.append(
            [
                r["broker"],
                r["workers"],
                r["provider_seconds"],
                r["jobs"],
                r["seconds"],
                r["jobs_per_second"],
                r["ideal_jobs_per_second"],
                f"{r['share_of_ideal']:.0%}",
                common.verdict(passes(r)),
                r["finish_lag_ms"]["p50"],
                r["finish_lag_ms"]["p95"],
                r["queued_to_done_p95_s"],
                r["overhead_ms"]["p50"],
                r["before_create_p50_ms"],
                r["probe"]["enqueue_to_start_ms"]["p50"] if r["probe"] else "-",
                r["qcluster_cpu_ms_per_job"],
                f"{r['machine_cpu_busy_during_drain']:.0%}",
                memory["tree_peak_pss_mb"],
                memory["largest_process_peak_rss_mb"],
            ]
        )
    return rows


HEADERS = [
    "broker",
    "workers",
    "latency s",
    "jobs",
    "drain s",
    "jobs/s",
    "provider-bound",
    "share",
    "result",
    "finish lag p50 ms",
    "p95 ms",
    "queued-to-done p95 s",
    "overhead p50 ms",
    "before create",
    "pickup p50 ms",
    "CPU ms/job",
    "machine busy",
    "tree PSS MB",
    "max proc RSS MB",
]


def check_correctness(runs: list[dict]) -> list[str]:
    problems = []
    for r in runs:
        name = f"{r['broker']}/{r['workers']}"
        if r["succeeded"] != r["jobs"]:
            problems.append(f"{name}: {r['jobs'] - r['succeeded']} jobs did not succeed")
        if r["ran_more_than_once"]:
            problems.append(f"{name}: {r['ran_more_than_once']} jobs were claimed more than once")
        if r["predictions_created"] != r["predictions_expected"]:
            problems.append(f"{name}: {r['predictions_created']} predictions for {r['predictions_expected']} jobs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs per run (default 500)")
    parser.add_argument("--workers", default="4", help="comma-separated Q_WORKERS values (default 4; try 4,8)")
    parser.add_argument("--brokers", default="orm,redis", help="orm, redis or both (default orm,redis)")
    parser.add_argument("--probe", type=int, default=8, help="single jobs on the idle cluster afterwards (default 8)")
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="seconds the fake may hold a `Prefer: wait` create until the prediction is done, as Replicate "
        "does (default 0: answered at once, so the app polls)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.2,
        help="seconds every prediction takes at the fake (default 0.2; try 2 and 60 with --jobs 200)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    options = parser.parse_args()
    globals()["PREDICT_SECONDS"] = options.latency  # read by the functions above
    worker_counts = [int(n) for n in options.workers.split(",")]
    brokers = [b.strip() for b in options.brokers.split(",")]

    info = common.machine()
    print(
        f"Pipeline benchmark on {common.machine_line(info)}; {options.jobs} jobs per run, "
        f"fake Replicate predictions taking {PREDICT_SECONDS:g} s"
        + (f", holding creates up to {options.hold:g} s" if options.hold else "")
    )
    load_before = common.warn_if_busy()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    runs = []
    try:
        common.create_template(TEMPLATE)
        # Each run's fake has its own address (passed to the cluster); this one only lets settings load.
        common.django_setup(DATABASE, env=app_env("http://127.0.0.1:9", str(workdir / "media"), 1))
        for broker in brokers:
            for workers in worker_counts:
                runs.append(one_run(broker, workers, options, workdir))
    finally:
        from django.db import connections

        connections.close_all()
        if not options.keep:
            common.drop_database(DATABASE)
            common.drop_database(TEMPLATE)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(common.table(HEADERS, report_rows(runs)))
    print(
        "\nTarget: "
        + (
            f"drain < {TARGET_DRAIN_FACTOR:g} x the latency ({TARGET_DRAIN_FACTOR * PREDICT_SECONDS:g} s)"
            if PREDICT_SECONDS >= LONG_LATENCY
            else f"jobs/s >= {TARGET_SHARE_OF_IDEAL:.0%} of the provider-bound rate (workers / {PREDICT_SECONDS:g} s)"
        )
        + ". Drain: first start to last finish (all jobs queued before the cluster starts). Finish lag: the "
        "prediction done at the fake to the job finished. Overhead = (finished - started) - provider time; before "
        "create: claim + building the request. Pickup: enqueue-to-start on an idle cluster. CPU ms/job: the qcluster "
        "tree's CPU time per job (PostgreSQL and the fake not included); machine busy: all CPUs during the drain. "
        "Memory: the qcluster tree's peak PSS and its largest process's peak RSS."
    )
    problems = check_correctness(runs)
    for problem in problems:
        print(f"  PROBLEM {problem}")
    # A run with --hold or another latency is another question: its own file.
    name = "pipeline" + (f"-{PREDICT_SECONDS:g}s" if PREDICT_SECONDS != 0.2 else "") + ("-hold" if options.hold else "")
    path = common.write_results(
        name,
        {
            "machine": info,
            "commit": common.git_commit(),
            "load_average": common.load_record(load_before),
            "setup": {
                "jobs_per_run": options.jobs,
                "provider_seconds": PREDICT_SECONDS,
                "fake_holds_create_seconds": options.hold,
                "measured_from": "first started_at to last finished_at; all jobs queued before qcluster starts",
            },
            "targets": {"share_of_ideal": TARGET_SHARE_OF_IDEAL, "drain_factor": TARGET_DRAIN_FACTOR},
            "correctness_problems": problems,
            "runs": runs,
        },
    )
    print(f"Wrote {path.relative_to(common.ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    os.chdir(common.ROOT)
    sys.exit(main())
