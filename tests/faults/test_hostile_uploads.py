"""Small uploads that cost seconds of pixels do not take the site down.

gunicorn runs exactly as the Procfile says (three sync workers, its default), the cache and the
rate limits on a Redis of the test's own, PostgreSQL behind. Five accounts (two of them unable
to afford a batch) send twenty batches at once, each of ten 40-megapixel WebP files of 1.6 KB.
Meanwhile a liveness probe asks /healthz and another person browses their pages. Every batch is
refused with a message (or by the upload limit), nothing is stored or charged, no answer is a
5xx, the probe is answered every time within its timeout, and the other person's pages work.
(bench/uploads.py measures the same with p95 figures beside an idle baseline.)"""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from django.test import Client

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from generation.models import Job, Upload
from generation.tests.factories import local_edit_model
from generation.tests.photos import pixel_bomb_webp
from generation.tests.test_qcluster import database_url
from tests.clusters import RedisServer
from tests.webserver import procfile_gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

# A load balancer's liveness probe gives up after a few seconds; Kubernetes' default is one.
PROBE_TIMEOUT = 5.0
ATTACKERS, BATCHES_EACH, PHOTOS_EACH = 5, 4, 10


@pytest.fixture
def site(tmp_path):
    with RedisServer() as redis_server:
        env = {
            "DREAMPIXEL_ENV": "development",
            "DEBUG": "false",
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_server.url,
            "MEDIA_ROOT": str(tmp_path / "media"),
            "LOCAL_RENDERER_ENABLED": "true",
            "LOG_LEVEL": "WARNING",
        }
        with procfile_gunicorn(env, log=tmp_path / "gunicorn.log") as port:
            yield f"http://127.0.0.1:{port}"


def signed_in(base: str, user) -> httpx.Client:
    django_client = Client()
    django_client.force_login(user)
    session = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return httpx.Client(base_url=base, cookies={settings.SESSION_COOKIE_NAME: session}, timeout=90)


def csrf_token(client: httpx.Client, path: str) -> str:
    page = client.get(path).text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_twenty_batches_of_pixel_bombs_leave_the_site_answering(site):
    model = local_edit_model()
    attackers = [UserFactory() for _ in range(ATTACKERS)]
    for user in attackers[:3]:  # three can afford a batch; two cannot
        credits_grant(user=user, amount=50_000, key=f"purchase:hostile-{user.pk}")
    bystander = UserFactory()
    balances = {user.pk: balance_of(user) for user in attackers}
    bomb = pixel_bomb_webp()
    assert len(bomb) < 2_000

    clients = [signed_in(site, user) for user in attackers]
    tokens = [csrf_token(client, "/batches/new/") for client in clients]
    neighbour = signed_in(site, bystander)

    def attack(index: int) -> tuple[int, str]:
        """(status, page); status 0 when the worker was killed before it answered (its timeout)."""
        client, token = clients[index % ATTACKERS], tokens[index % ATTACKERS]
        files = [("photos", (f"p{n}.webp", bomb, "image/webp")) for n in range(PHOTOS_EACH)]
        data = {"csrfmiddlewaretoken": token, "model": str(model.pk), "prompt": "Brighter",
                "form_token": str(uuid.uuid4())}  # fmt: skip
        try:
            answer = client.post("/batches/new/", data=data, files=files, headers={"Referer": site + "/batches/new/"})
        except httpx.TransportError:
            return 0, ""
        return answer.status_code, answer.text

    probes: list[tuple[int | None, float]] = []
    pages: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=site, timeout=PROBE_TIMEOUT) as probe:
            while not done.is_set():
                started = time.monotonic()
                try:
                    status: int | None = probe.get("/healthz").status_code
                except httpx.TimeoutException:
                    status = None
                probes.append((status, time.monotonic() - started))
                for path in ("/gallery/", "/billing/"):
                    try:
                        pages.append(neighbour.get(path, timeout=PROBE_TIMEOUT).status_code)
                    except httpx.TimeoutException:
                        pages.append(0)
                time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=ATTACKERS * BATCHES_EACH) as pool:
            answers = list(pool.map(attack, range(ATTACKERS * BATCHES_EACH)))
        time.sleep(1)  # the probe keeps asking a moment after the last answer
    finally:
        done.set()
        watcher.join()

    statuses = [status for status, _ in answers]
    assert all(0 < status < 500 for status in statuses), statuses
    for status, page in answers:
        if status == 200:
            assert "megapixels in" in page or "Not enough credits" in page, page[:500]
        else:
            assert status == 429
    assert probes and all(status == 200 for status, _ in probes), probes
    assert max(seconds for _, seconds in probes) < PROBE_TIMEOUT
    assert pages and set(pages) == {200}, pages

    assert not Upload.objects.exists() and not Job.objects.exists()
    assert not LedgerEntry.objects.filter(kind="charge").exists()
    assert {user.pk: balance_of(user) for user in attackers} == balances
