"""Pipeline: jobs through a real `qcluster` against a fake Replicate that takes 200 ms.

    .venv/bin/python bench/pipeline.py [--jobs 500] [--workers 4] [--brokers orm,redis] [--hold 0]

(`--workers 4,8` adds runs with 8 workers: about 4 minutes in all instead of 2.)

For each broker (django-q2's ORM broker on PostgreSQL, then Redis DB 12) and worker count, a
fresh database gets one Replicate catalog model and a user with credits; `--jobs` jobs are
created with `generation.services.job_create`, which charges each one and enqueues its task on
commit through the app's own path (for the Redis run this process's django-q is pointed at
Redis, so nothing goes to the ORM queue). Then `manage.py qcluster` starts with Q_WORKERS
workers and drains the queue: the jobs are queued *before* the cluster starts, so the rate is
measured from the first job's `started_at` to the last job's `finished_at`.

- jobs/s against the ideal, workers ÷ provider time (every worker busy only with the provider);
- our overhead per job: (finished_at - started_at) - the prediction's own duration at the fake,
  at p50 and p95, split into before the create call, the wait for a poll to see the result
  (the app polls from 0.1 s with x1.5 backoff), and after it (download, thumbnail, store, finish);
- the time between jobs on a worker (django-q's hand-off), and the qcluster's CPU time per job;
- the qcluster process tree's peak memory (PSS of the tree, RSS of its largest process);
- then `--probe` single jobs on the idle cluster: enqueue-to-start latency (the broker's pickup).

`--hold S` makes the fake hold a create sent with `Prefer: wait` until the prediction is done
(up to S seconds), as Replicate does; those figures go to bench/results/pipeline-hold.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.fakes.replicate import DEFAULT_TOKEN, FakeReplicate, _json_reply

TEMPLATE = "bench_pipeline_template"
DATABASE = "bench_pipeline"
PREDICT_SECONDS = 0.2
TARGET_SHARE_OF_IDEAL = 0.70
TARGET_OVERHEAD_P50_MS = 150
_PREDICTION_GET = re.compile(r"^/v1/predictions/([^/]+)$")
_OUTPUT_GET = re.compile(r"^/files/([^/]+)/")


class TimedFake(FakeReplicate):
    """The tests' fake, plus the wall-clock time of every answer, to split the overhead.

    With `hold`, a create sent with `Prefer: wait` is answered when the prediction is done (up
    to `hold` seconds), as Replicate does; the tests' fake answers such a create at once."""

    def __init__(self, *, hold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hold = hold
        self.answered: list[tuple[float, str, str]] = []
        self.create_answered: dict[str, float] = {}

    def _handle(self, method, path, headers, body):
        reply = super()._handle(method, path, headers, body)
        self.answered.append((time.time(), method, path.split("?", 1)[0]))  # list.append is atomic
        return reply

    def _create(self, body, *, model, token, prefer_wait):
        reply = super()._create(body, model=model, token=token, prefer_wait=prefer_wait)
        if reply.status != 201:
            return reply
        record = self.predictions[json.loads(reply.body)["id"]]
        if self.hold and prefer_wait:
            time.sleep(min(max(record.created + record.seconds - time.monotonic(), 0.0), self.hold))
            with self._lock:
                reply = _json_reply(201, self._render(record, time.monotonic()))
        self.create_answered[record.id] = time.time()
        return reply


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


def job_timings(job_ids: list, fake: TimedFake) -> list[dict]:
    """Per job: start, finish, and the overhead split around the provider's own time."""
    from generation.models import Job

    last_poll: dict[str, float] = {}
    first_download: dict[str, float] = {}
    for moment, method, path in list(fake.answered):
        if method == "GET" and (match := _PREDICTION_GET.match(path)):
            last_poll[match[1]] = moment
        elif method == "GET" and (match := _OUTPUT_GET.match(path)):
            first_download.setdefault(match[1], moment)
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
        # When the app learnt the result: its last poll, or the create answer if that was final.
        seen = last_poll.get(prediction.id) or fake.create_answered.get(prediction.id, ready)
        rows.append(
            {
                "ok": job["status"] == "succeeded",
                "status": job["status"],
                "attempts": job["attempts"],
                "queued_s": started - job["created_at"].timestamp(),
                "started": started,
                "finished": finished,
                "overhead_s": (finished - started) - prediction.seconds,
                "before_create_s": created - started,
                "result_lag_s": max(seen - ready, 0.0),
                "after_result_s": finished - seen,
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
    return {
        "jobs": len(rows),
        "succeeded": len(good),
        "ran_more_than_once": sum(r["attempts"] != 1 for r in good),
        "seconds": round(span, 2),
        "jobs_per_second": round(rate, 2),
        "ideal_jobs_per_second": round(ideal, 2),
        "share_of_ideal": round(rate / ideal, 3),
        "overhead_ms": {
            "p50": ms(overheads, 50),
            "p95": ms(overheads, 95),
            "mean": round(sum(overheads) / len(overheads) * 1000, 1),
        },
        # Each part's own p50; they need not add up to the overhead's p50.
        "overhead_split_p50_ms": {
            "before_create": ms([r["before_create_s"] for r in good], 50),
            "result_lag": ms([r["result_lag_s"] for r in good], 50),
            "after_result": ms([r["after_result_s"] for r in good], 50),
        },
        # Time between consecutive jobs on one worker is not measured per worker; this is the
        # rest of a worker's time per job once provider time and our overhead are taken out.
        "queue_gap_ms": round((workers / rate - PREDICT_SECONDS - sum(overheads) / len(overheads)) * 1000, 1),
        "queued_p50_s": round(common.percentile([r["queued_s"] for r in good], 50), 2),
    }


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
    fake = TimedFake(predict_seconds=PREDICT_SECONDS, tokens={DEFAULT_TOKEN}, hold=options.hold).start()
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
            wait_final(job_ids, 60 + 5 * options.jobs * PREDICT_SECONDS / workers, cluster, log, memory)
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
        "enqueue_seconds": round(creating.seconds, 2),
        "qcluster_memory": memory.summary(),
        "qcluster_cpu_ms_per_job": round(cpu["tree_cpu_seconds"] / options.jobs * 1000, 1),
        "machine_cpu_busy_during_drain": cpu["machine_busy_share"],
    }
    o = summary["overhead_ms"]
    print(
        f"  {broker:<5} {workers} workers: {summary['jobs_per_second']:6.2f} jobs/s "
        f"({summary['share_of_ideal']:.0%} of {summary['ideal_jobs_per_second']:g}), overhead p50 {o['p50']} ms "
        f"p95 {o['p95']} ms, {summary['succeeded']}/{summary['jobs']} succeeded",
        flush=True,
    )
    return summary


def report_rows(runs: list[dict]) -> list[list]:
    rows = []
    for r in runs:
        split = r["overhead_split_p50_ms"]
        memory = r["qcluster_memory"]
        rows.append(
            [
                r["broker"],
                r["workers"],
                r["jobs_per_second"],
                r["ideal_jobs_per_second"],
                f"{r['share_of_ideal']:.0%}",
                common.verdict(r["share_of_ideal"] >= TARGET_SHARE_OF_IDEAL),
                r["overhead_ms"]["p50"],
                r["overhead_ms"]["p95"],
                common.verdict(r["overhead_ms"]["p50"] < TARGET_OVERHEAD_P50_MS),
                split["before_create"],
                split["result_lag"],
                split["after_result"],
                r["queue_gap_ms"],
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
    "jobs/s",
    "ideal",
    "share",
    "result",
    "overhead p50 ms",
    "p95 ms",
    "result",
    "before create",
    "result lag",
    "after result",
    "queue gap",
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
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    options = parser.parse_args()
    worker_counts = [int(n) for n in options.workers.split(",")]
    brokers = [b.strip() for b in options.brokers.split(",")]

    info = common.machine()
    print(
        f"Pipeline benchmark on {common.machine_line(info)}; {options.jobs} jobs per run, "
        f"fake Replicate answering after {PREDICT_SECONDS * 1000:.0f} ms"
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
        f"\nTargets: jobs/s >= {TARGET_SHARE_OF_IDEAL:.0%} of ideal (workers / {PREDICT_SECONDS:g} s); overhead p50 < "
        f"{TARGET_OVERHEAD_P50_MS} ms. Overhead = (finished - started) - provider time; the next three columns are "
        "each part's p50 (ms): claim + create call, until the app saw the result, download + store + finish. "
        "Queue gap: the rest of a worker's time per job (django-q hand-off). Pickup: enqueue-to-start on an idle "
        "cluster. CPU ms/job: the qcluster tree's CPU time per job (PostgreSQL and the fake not included); machine "
        "busy: all CPUs during the drain. Memory: the qcluster tree's peak PSS and its largest process's peak RSS."
    )
    problems = check_correctness(runs)
    for problem in problems:
        print(f"  PROBLEM {problem}")
    # A run with --hold is another question (what production's Prefer: wait gives): its own file.
    path = common.write_results(
        "pipeline-hold" if options.hold else "pipeline",
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
            "targets": {"share_of_ideal": TARGET_SHARE_OF_IDEAL, "overhead_p50_ms": TARGET_OVERHEAD_P50_MS},
            "correctness_problems": problems,
            "runs": runs,
        },
    )
    print(f"Wrote {path.relative_to(common.ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    os.chdir(common.ROOT)
    sys.exit(main())
