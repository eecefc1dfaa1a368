"""Uploads: /healthz and a person's pages while batches of pixel bombs arrive twenty at a time.

    .venv/bin/python bench/uploads.py [--seconds 15] [--every 2] [--keep]

gunicorn runs exactly as the Procfile's `web:` line (three sync workers, its default), with the
cache and rate limits on Redis (DB 12) and PostgreSQL behind. Five accounts, two of which cannot
afford a batch, send waves of twenty batch uploads at once (four each), one wave every `--every`
seconds for `--seconds`; each batch is ten lossless WebP files of 40 megapixels and about 1.6 KB
(15.8 KB a request). Then, for as long again, twenty are kept in flight without a pause (each
thread sends its next batch as soon as the last is answered): more than a wave of twenty asks,
shown to say where the three workers saturate. The upload limit is raised for the run so that
every request reaches the photo checks, the costlier path (with the default limit, six a minute
per person, most are refused at the door). Meanwhile a probe asks /healthz every 50 ms, as a load
balancer does, and a sixth person opens their gallery and billing pages. The baseline, measured in
the same run: the same probe and pages with nothing else happening. Also shown: what one such
file costs to decode and write again in this process, which is what each of the ten files of a
batch cost a web worker before uploads were judged from their headers. Target: /healthz p95
within 1 s during the waves.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DATABASE = "bench_uploads"
ATTACKERS, IN_FLIGHT, PHOTOS = 5, 20, 10
PROBE_EVERY = 0.05
TARGET_HEALTHZ_P95_S = 1.0


def app_env(static_root: str, media_root: str) -> dict[str, str]:
    return {
        "REDIS_URL": common.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1",
        "BENCH_STATIC_ROOT": static_root,
        "MEDIA_ROOT": media_root,
        "LOCAL_RENDERER_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
        # Every request reaches the photo checks (the default, 6 a minute, refuses most at the door).
        "RATELIMIT_UPLOADS_PER_USER": "100000/m",
        "RATELIMIT_UPLOADS_PER_IP": "100000/m",
        "RATELIMIT_JOBS_PER_USER": "100000/m",
        "RATELIMIT_JOBS_PER_IP": "100000/m",
    }


def flush_redis() -> None:
    import redis

    redis.from_url(common.REDIS_URL).flushdb()


def pixel_bomb() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (7_000, 5_700), (10, 20, 30)).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def decode_cost(bomb: bytes) -> float:
    """Seconds to decode and write again one file in this process (the old path on the web)."""
    from generation.imagemeta import image_without_metadata

    with common.Stopwatch() as watch:
        image_without_metadata(bomb)
    return watch.seconds


def seed() -> dict:
    """Five attackers (three with credits), one person with a gallery; their session cookies."""
    from django.test import Client

    from accounts.models import User
    from billing.services import credits_grant
    from generation.models import AIModel
    from generation.services import job_create, job_run

    edit = AIModel.objects.filter(kind="image_edit", provider="local", enabled=True).first()
    image_model = AIModel.objects.filter(kind="image", provider="local", enabled=True).first()
    if edit is None or image_model is None:
        raise RuntimeError("no local image and edit models in the catalog")
    cookies = []
    for n in range(ATTACKERS):
        user = User.objects.create_user(email=f"attacker{n}@bench.example", password=None)
        if n < 3:
            credits_grant(user=user, amount=100_000, key=f"purchase:bench-uploads-{user.pk}")
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    person = User.objects.create_user(email="person@bench.example", password=None)
    credits_grant(user=person, amount=10_000, key=f"purchase:bench-uploads-{person.pk}")
    for n in range(6):
        job_run(job_id=job_create(user=person, model=image_model, prompt=f"Harbour {n}", aspect_ratio="square").id)
    client = Client()
    client.force_login(person)
    return {"attackers": cookies, "person": client.cookies["sessionid"].value, "model": edit.pk}


class Probe(threading.Thread):
    """/healthz every PROBE_EVERY seconds, and the person's pages between: (seconds, status)."""

    def __init__(self, base: str, person_cookie: str) -> None:
        super().__init__(daemon=True)
        import httpx

        self.health = httpx.Client(base_url=base, timeout=30)
        self.person = httpx.Client(base_url=base, cookies={"sessionid": person_cookie}, timeout=30)
        self.stop = threading.Event()
        self.healthz: list[tuple[float, int]] = []
        self.pages: list[tuple[float, int]] = []

    def _timed(self, client, path: str) -> tuple[float, int]:
        started = time.perf_counter()
        try:
            status = client.get(path).status_code
        except Exception:  # a timeout or a dropped connection is an answer that did not come
            status = 0
        return time.perf_counter() - started, status

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            self.healthz.append(self._timed(self.health, "/healthz"))
            if turn % 4 == 0:
                self.pages.append(self._timed(self.person, ("/gallery/", "/billing/")[turn // 4 % 2]))
            turn += 1
            time.sleep(PROBE_EVERY)


def attack(
    base: str, cookies: list[str], model: int, bomb: bytes, seconds: float, every: float
) -> list[tuple[float, int, str]]:
    """IN_FLIGHT threads sending batches for `seconds`: all at once every `every` seconds (a wave),
    or each its next as soon as the last is answered (every=0). (seconds, status, verdict) each."""
    import httpx

    answers: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    started_at = time.monotonic()
    deadline = started_at + seconds

    def one_thread(index: int) -> None:
        with httpx.Client(base_url=base, cookies={"sessionid": cookies[index % ATTACKERS]}, timeout=120) as client:
            found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/batches/new/").text)
            if found is None:
                raise RuntimeError("the batch page has no form for this account")
            token = found.group(1)
            wave = 0
            while time.monotonic() < deadline:
                if every:  # wait for this wave's start: the twenty leave together
                    time.sleep(max(0.0, started_at + wave * every - time.monotonic()))
                    wave += 1
                    if time.monotonic() >= deadline:
                        break
                files = [("photos", (f"p{n}.webp", bomb, "image/webp")) for n in range(PHOTOS)]
                data = {"csrfmiddlewaretoken": token, "model": str(model), "prompt": "Brighter",
                        "form_token": str(uuid.uuid4())}  # fmt: skip
                started = time.perf_counter()
                try:
                    answer = client.post("/batches/new/", data=data, files=files, headers={"Referer": base + "/"})
                    status, text = answer.status_code, answer.text
                except Exception:
                    status, text = 0, ""
                verdict = ("pixels" if "megapixels in" in text else "credits" if "Not enough credits" in text
                           else "limit" if status == 429 else "other")  # fmt: skip
                with lock:
                    answers.append((time.perf_counter() - started, status, verdict))

    threads = [threading.Thread(target=one_thread, args=(i,)) for i in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


Answers = list[tuple[float, int, str]]


def measured(base: str, person_cookie: str, work: Callable[[], Answers]) -> tuple[Probe, Answers]:
    """The probe's figures while `work` runs, and what `work` returned."""
    probe = Probe(base, person_cookie)
    probe.start()
    try:
        result = work()
    finally:
        probe.stop.set()
        probe.join()
    return probe, result


def quiet(seconds: float) -> Callable[[], Answers]:
    def wait() -> Answers:
        time.sleep(seconds)
        return []

    return wait


def latency_row(name: str, samples: list[tuple[float, int]]) -> list:
    seconds = [s for s, _ in samples]
    failed = sum(1 for _, status in samples if status != 200)
    return [name, len(samples), failed, 1000 * common.percentile(seconds, 50), 1000 * common.percentile(seconds, 95),
            1000 * max(seconds)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase (default 15)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between waves of twenty (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    options = parser.parse_args()

    from tests.webserver import procfile_gunicorn

    info = common.machine()
    print(f"Upload benchmark on {common.machine_line(info)}")
    load_before = common.warn_if_busy()
    workdir = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    env = app_env(str(workdir / "static"), str(workdir / "media"))
    flush_redis()
    try:
        common.drop_database(DATABASE)
        common.create_template(DATABASE, env=env)
        common.run_manage(["collectstatic", "--no-input", "-v0"], database=DATABASE, env=env)
        common.django_setup(DATABASE, env=env)
        seeded = seed()
        bomb = pixel_bomb()
        cost = min(decode_cost(bomb) for _ in range(3))
        from django.db import connections

        connections.close_all()
        server_env = common.manage_env(DATABASE, env)
        with procfile_gunicorn(server_env, log=workdir / "gunicorn.log", collect_static=False) as port:
            base = f"http://127.0.0.1:{port}"
            measured(base, seeded["person"], quiet(2))  # warm every worker
            idle, _ = measured(base, seeded["person"], quiet(options.seconds))
            under, answers = measured(
                base, seeded["person"],
                lambda: attack(base, seeded["attackers"], seeded["model"], bomb, options.seconds, options.every),
            )  # fmt: skip
            flooded, flood_answers = measured(
                base,
                seeded["person"],
                lambda: attack(base, seeded["attackers"], seeded["model"], bomb, options.seconds, 0),
            )
        from generation.models import Job, Upload

        kept = Upload.objects.count() + Job.objects.filter(user__email__startswith="attacker").count()
    finally:
        from django.db import connections

        connections.close_all()
        if not options.keep:
            common.drop_database(DATABASE)
        flush_redis()
        shutil.rmtree(workdir, ignore_errors=True)

    healthz_p95 = common.percentile([s for s, _ in under.healthz], 95)
    ok = healthz_p95 <= TARGET_HEALTHZ_P95_S and all(status == 200 for _, status in under.healthz + under.pages)
    attack_seconds = [s for s, _, _ in answers]
    all_answers = answers + flood_answers
    verdicts = {v: sum(1 for _, _, x in all_answers if x == v) for v in ("pixels", "credits", "limit", "other")}
    statuses = sorted({status for _, status, _ in all_answers})
    print()
    print(f"One {len(bomb):,}-byte file of 40 megapixels: {cost:.2f} s to decode and write again in one process;")
    print(f"a batch of ten cost a web worker about {10 * cost:.1f} s before uploads were judged from their headers.")
    print()
    print(common.table(
        ["what", "requests", "not 200", "p50 ms", "p95 ms", "max ms"],
        [
            latency_row("/healthz, idle (baseline)", idle.healthz),
            latency_row(f"/healthz, waves of 20 every {options.every:g} s", under.healthz),
            latency_row("/healthz, 20 kept in flight", flooded.healthz),
            latency_row("gallery and billing, idle (baseline)", idle.pages),
            latency_row("gallery and billing, waves", under.pages),
            latency_row("gallery and billing, 20 in flight", flooded.pages),
            latency_row("hostile batches, waves", [(s, status) for s, status, _ in answers]),
            latency_row("hostile batches, 20 in flight", [(s, status) for s, status, _ in flood_answers]),
        ],
    ))  # fmt: skip
    print()
    print(f"Hostile batches: statuses {statuses}; refused for their pixels {verdicts['pixels']}, for credits "
          f"{verdicts['credits']}, by the limit {verdicts['limit']}, other {verdicts['other']}; uploads or jobs kept: {kept}.")  # fmt: skip
    print(f"/healthz p95 during the waves {1000 * healthz_p95:.0f} ms (target <= {TARGET_HEALTHZ_P95_S * 1000:.0f} ms): "
          f"{common.verdict(ok)}")  # fmt: skip
    path = common.write_results(
        "uploads",
        {
            "machine": info,
            "load": common.load_record(load_before),
            "commit": common.git_commit(),
            "seconds": options.seconds,
            "file_bytes": len(bomb),
            "decode_and_write_seconds": round(cost, 3),
            "healthz_idle_ms": {
                q: round(1000 * common.percentile([s for s, _ in idle.healthz], q), 1) for q in (50, 95)
            },
            "healthz_attack_ms": {
                q: round(1000 * common.percentile([s for s, _ in under.healthz], q), 1) for q in (50, 95)
            },
            "healthz_attack_max_ms": round(1000 * max(s for s, _ in under.healthz), 1),
            "healthz_in_flight_ms": {
                q: round(1000 * common.percentile([s for s, _ in flooded.healthz], q), 1) for q in (50, 95)
            },
            "pages_idle_p95_ms": round(1000 * common.percentile([s for s, _ in idle.pages], 95), 1),
            "pages_attack_p95_ms": round(1000 * common.percentile([s for s, _ in under.pages], 95), 1),
            "pages_in_flight_p95_ms": round(1000 * common.percentile([s for s, _ in flooded.pages], 95), 1),
            "pages_not_200_under_attack": sum(1 for _, s in under.pages + flooded.pages if s != 200),
            "every_seconds": options.every,
            "attack_requests": len(answers),
            "attack_p95_ms": round(1000 * common.percentile(attack_seconds, 95), 1),
            "in_flight_requests": len(flood_answers),
            "in_flight_p95_ms": round(1000 * common.percentile([s for s, _, _ in flood_answers], 95), 1),
            "attack_statuses": statuses,
            "attack_verdicts": verdicts,
            "kept": kept,
            "verdict": common.verdict(ok),
        },
    )
    print(f"Results: {path.relative_to(common.ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
