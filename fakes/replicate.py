"""A fake Replicate HTTP API on loopback, for tests that drive the real `replicate` client.

How the real client (replicate 1.0.7, httpx 0.28) meets errors; the app must plan for this,
and fakes/tests/test_fake_replicate.py proves each point against this server:
- Any answer with status >= 400 ends as `replicate.exceptions.ReplicateError`, with `.status`
  (the HTTP status, an int) and `.detail` (from a JSON body; None when the body is not JSON,
  e.g. a proxy's HTML 502 page). `str(err)` starts with "ReplicateError Details:".
- Its transport retries 429, 503 and 504 by itself, but only for GET (and other idempotent
  methods), up to 10 attempts in all. It sleeps `Retry-After` seconds when that header is a
  number (not capped: a large value blocks the caller that long), else 0.1 s * 2**n.
  POST (create, cancel, file upload) is never retried: a 429 or 503 on create reaches the app
  at once. 500 and 502 are never retried, whatever the method.
- Timeouts and connection failures are NOT wrapped: they surface as httpx exceptions
  (`httpx.ReadTimeout`, `httpx.ConnectTimeout`: both `httpx.TimeoutException`; and
  `httpx.ConnectError`), and are not retried. The client's timeout (default: connect 5 s,
  read 30 s) covers get/reload/cancel. Creating a prediction WITHOUT `wait` sends
  `timeout=None`, i.e. no timeout at all (a hung API hangs the worker); `wait=N` sends
  `Prefer: wait=N` and a read timeout of N + 0.5 s (`wait=True`: 60.5 s). File uploads have no
  timeout either. A create that timed out may still have created (and billed) the prediction.
- `client.run()` wraps only https: and data: output URLs in FileOutput; this fake serves
  http: URLs, so here run() returns plain strings. Prefer `create` + reading `.output` URLs.
- A failed or canceled prediction is not an exception for `create`/`get`/`reload`/`wait`:
  read `.status` and `.error`. Only `client.run()` and `output_iterator()` raise
  `replicate.exceptions.ModelError` for a failed one.

Scenarios are picked by a marker in the `prompt` input, so one test run can mix outcomes:
  "[fail]"    failed, error "Model crashed: CUDA out of memory ..."
  "[nsfw]"    failed, error "NSFW content detected. ..."
  "[empty]"   succeeded with output [] (what a safety filter returns)
  "[null]"    succeeded with output null
  "[slow]"    takes 10x predict_seconds, at least 30 s (for cancel and sweeper tests)
  "[expired]" succeeded, but the file URLs answer 404 (Replicate deleted the files)
  "[nsfw-one]" succeeded with one output fewer than `num_outputs` asked (what FLUX's safety
              checker does when it flags some of several images, not all)
  "[aborted]" never starts: "starting" until its seconds pass, then "aborted" (Replicate's status
              for a prediction whose deadline passed before it ran; no output, no metrics, not billed)
`add_prediction(status=...)` puts a prediction the app did not make into the account's list, with
any status (`aborted`, or one nobody has seen yet) and any shape, as runs started from Replicate's
website or by another app on the same account appear there.
An uploaded file (POST /v1/files) containing POISON bytes, or a PNG whose top-left pixel is
POISON_PIXEL, fails the predictions that use it.
Outputs: PNG images (64x64, deterministic from prompt, seed and index; `output_format`
"jpg"/"webp" is honoured, `num_outputs` up to 4). A video model (name contains "video", or the
input has "duration") gives one "output.mp4" served as video/mp4: a real one-second H.264 clip,
or, with "[corrupt]" in the prompt, only an MP4 `ftyp` box plus filler (sniffers call it MP4,
but nothing can play it). An upscaler (name contains "esrgan", or the input has "scale") gives
its input `image` (an uploaded file, a data URL or an http URL) `scale` times larger, as PNG.
Models whose published output schema is one URI (`SINGLE_OUTPUT_MODELS`: Real-ESRGAN, Seedance)
answer `output` as a string, not a list, as they do on Replicate.

Status follows the clock: "starting" for the first 20% of the prediction's seconds,
"processing" until they have passed, then final. A create answer is always "starting", as on
Replicate, unless the request sent `Prefer: wait`, which gets the current state at once, or,
with `hold_waits` seconds, once the prediction is done (at most that long), as Replicate holds it.
The list (`GET /v1/predictions`) is what Replicate's reference documents: the token's own
account's predictions, newest first, 100 a page with a `next` cursor, each item with `id`,
`model`, `version`, `status`, `input`, `output`, `error`, `metrics`, `source`, `data_removed`,
`urls` and the timestamps, and no `webhook` (a get shows `webhook` and its filter, as the bodies of
real webhooks do). Every field is one of Replicate's published Prediction type, and every status
one of its published statuses (fakes/contracts/replicate_published_examples.json, checked by
generation/tests/test_replicate_published_shapes.py). Tokens map to accounts (`accounts={token: account}`; by default all one
account): another account's prediction answers 404 to get and cancel, as on Replicate, and is
not in the list. `list_enabled = False` makes the list answer 404 (a provider without it).
Webhooks: only the "completed" event is sent (if it is in `webhook_events_filter`), from a
timer thread, signed like Replicate (Svix scheme); failed deliveries are recorded, not retried.
Extra: `POST /v1/files` accepts uploads (what the client does with file objects in `input`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import io
import json
import re
import secrets
import socket
import ssl
import struct
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import av
import httpx
import replicate
from PIL import Image, ImageDraw

DEFAULT_TOKEN = "r8_test_token"
# Replicate's prediction lifecycle documents these final statuses; the pinned client (1.0.7) knows
# only the first three and raises a pydantic error on `aborted`.
FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
ALL_WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
FAIL_ERROR = (
    "Model crashed: CUDA out of memory. Tried to allocate 2.00 GiB "
    "(GPU 0; 23.69 GiB total capacity; 21.90 GiB already allocated)"
)
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
MARKERS = ("fail", "nsfw-one", "nsfw", "empty", "null", "slow", "expired", "aborted")
# Versions of community models as their pages publish them (these run by version, not by name).
PUBLISHED_VERSIONS = {
    "42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b": "nightmareai/real-esrgan",
}
# Output schema {"type": "string", "format": "uri"} on their model pages: one URL, not a list.
SINGLE_OUTPUT_MODELS = frozenset({"nightmareai/real-esrgan", "bytedance/seedance-1-lite"})
# An uploaded file containing these bytes (e.g. in a PNG text chunk) makes the prediction that
# uses it fail: one bad photo in a batch that shares one prompt.
POISON = b"FAKE-REPLICATE-FAIL"
# The same, for uploads whose metadata the app strips: a PNG whose top-left pixel is this colour.
POISON_PIXEL = (13, 37, 66)
STARTING_SHARE = 0.2
SLOW_FACTOR = 10
SLOW_MINIMUM_SECONDS = 30.0
IMAGE_SIZE = 64
IMAGE_FORMATS = {
    "png": ("PNG", "image/png", "png"),
    "jpg": ("JPEG", "image/jpeg", "jpg"),
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "webp": ("WEBP", "image/webp", "webp"),
}

_MODEL_CREATE = re.compile(r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$")
_PREDICTION = re.compile(r"^/v1/predictions/(?P<id>[^/]+)$")
_CANCEL = re.compile(r"^/v1/predictions/(?P<id>[^/]+)/cancel$")
_FILE = re.compile(r"^/files/(?P<id>[^/]+)/(?P<filename>[^/]+)$")


def _new_id(prefix: str = "") -> str:
    # Replicate ids look like "gm3qorzdhgbfurvjtvhg6dckhu": 26 lower-case base32 characters.
    return prefix + base64.b32encode(secrets.token_bytes(16)).decode().lower().rstrip("=")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakePrediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    token: str | None
    account: str
    scenario: str  # "ok" or one of MARKERS
    seconds: float  # from creation to the final state
    created: float  # time.monotonic(): status is derived from it
    created_at: datetime
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (type, bytes)
    webhook: str | None = None
    webhook_events_filter: list[str] = field(default_factory=lambda: list(ALL_WEBHOOK_EVENTS))
    canceled: float | None = None  # monotonic time of the cancel that took effect
    cancel_count: int = 0
    expired: bool = False
    webhook_sent: bool = False
    timer: threading.Timer | None = field(default=None, repr=False)
    # A prediction put in by add_prediction: this status always, and these fields over the render.
    fixed_status: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str = "api"

    def status_at(self, now: float) -> str:
        if self.fixed_status is not None:
            return self.fixed_status
        if self.canceled is not None:
            return "canceled"
        elapsed = now - self.created
        if self.scenario == "aborted":
            return "aborted" if elapsed >= self.seconds else "starting"
        if elapsed >= self.seconds:
            return "failed" if self.scenario in ("fail", "nsfw") else "succeeded"
        return "starting" if elapsed < self.seconds * STARTING_SHARE else "processing"


@dataclass
class WebhookDelivery:
    url: str
    prediction_id: str
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    status_code: int | None  # None when the receiver could not be reached
    error: str | None = None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering (the work was done)


def _json_reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _problem(status: int, detail: str, title: str | None = None) -> _Reply:
    payload: dict[str, Any] = {"detail": detail, "status": status}
    if title:
        payload["title"] = title
    return _json_reply(status, payload)


class FakeReplicate:
    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        predict_seconds: float = 0.0,
        webhook_secret: str | None = None,
        versions: Mapping[str, str] | None = None,
        webhook_timeout: float = 5.0,
        accounts: Mapping[str, str] | None = None,
        page_size: int = 100,
        hold_waits: float = 0.0,
    ) -> None:
        # A mutable set: tests rotate tokens by adding and discarding while the server runs.
        self.tokens: set[str] = set(tokens) if tokens is not None else {DEFAULT_TOKEN}
        self.predict_seconds = predict_seconds
        self.webhook_secret = webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        # version id -> "owner/name", for creates by version; unknown versions are accepted.
        self.versions: dict[str, str] = PUBLISHED_VERSIONS | dict(versions or {})
        self.webhook_timeout = webhook_timeout
        # token -> account; a token not named here belongs to the one default account.
        self.accounts: dict[str, str] = dict(accounts or {})
        self.page_size = page_size
        self.hold_waits = hold_waits
        self.list_enabled = True
        self.list_calls = 0
        self.url = ""

        self.predictions: dict[str, FakePrediction] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.created_count = 0
        self.cancel_calls = 0
        self.requests: list[tuple[str, str, str | None]] = []
        self.webhook_deliveries: list[WebhookDelivery] = []

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # wakes wait_for_webhooks
        self._stopping = threading.Event()  # cuts delay_next sleeps short on stop()
        self._faults: list[tuple[int, int]] = []  # (status, retry_after) per coming request
        self._delays: list[float] = []
        self._dropped_creates = 0
        self._token_counts: Counter[str | None] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-replicate", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for record in self.predictions.values():
                if record.timer is not None:
                    record.timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            # Drop keep-alive connections too, or clients would still be answered after stop().
            for connection in list(self._server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeReplicate:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- knobs for tests -------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500, *, retry_after: int = 1) -> None:
        """The next `count` API requests (not /files) answer `status`; 429 adds Retry-After."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail_next needs an error status, not {status}")
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def delay_next(self, count: int, seconds: float) -> None:
        """The next `count` API requests do their work at once but answer `seconds` late."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def drop_next_creates(self, count: int = 1) -> None:
        """The next `count` creates make (and bill) their prediction, then the connection is
        closed without an answer: what a worker sees when a proxy or the network cuts it."""
        with self._lock:
            self._dropped_creates += count

    def set_predict_seconds(self, prediction_id: str, seconds: float) -> None:
        """Change how long one prediction takes (counted from its creation); 0 finishes it now."""
        with self._lock:
            record = self.predictions[prediction_id]
            record.seconds = seconds
            self._schedule_webhook(record)

    def expire(self, prediction_id: str | None = None) -> None:
        """Make output files answer 404, as Replicate does about an hour after completion."""
        with self._lock:
            targets = [self.predictions[prediction_id]] if prediction_id else self.predictions.values()
            for record in targets:
                record.expired = True

    def tokens_used(self) -> dict[str | None, int]:
        """API requests per bearer token sent (None: no token), valid or not."""
        with self._lock:
            return dict(self._token_counts)

    def add_prediction(
        self,
        *,
        status: str,
        model: str = "someone-else/their-model",
        input: Any = None,
        source: str = "web",
        token: str | None = None,
        **overrides: Any,
    ) -> str:
        """A prediction this app did not make, in the list of `token`'s account (default: the
        default account), newest of all, with a fixed `status`; `overrides` replace fields of its
        JSON. An `input` that is not an object is shown as it is. Returns its id."""
        if input is not None and not isinstance(input, dict):
            overrides["input"] = input
        record = FakePrediction(
            id=_new_id(),
            model=model,
            version=hashlib.sha256(model.encode()).hexdigest(),
            input=dict(input) if isinstance(input, dict) else {"prompt": "made elsewhere"},
            token=token,
            account=self.account_of(token),
            scenario="ok",
            seconds=0.0,
            created=time.monotonic(),
            created_at=datetime.now(UTC),
            fixed_status=status,
            overrides=overrides,
            source=source,
        )
        with self._lock:
            self.predictions[record.id] = record
        return record.id

    def status_of(self, prediction_id: str) -> str:
        with self._lock:
            return self.predictions[prediction_id].status_at(time.monotonic())

    # -- webhooks --------------------------------------------------------------------------

    def sign(self, body: bytes, *, webhook_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
        """Headers that sign `body` the way Replicate does, with this server's secret."""
        webhook_id = webhook_id or _new_id("msg_")
        timestamp = int(time.time()) if timestamp is None else timestamp
        key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }

    def redeliver(self, index: int = -1) -> WebhookDelivery:
        """Send a recorded delivery again with the same webhook-id, as Replicate's retries do.

        The timestamp and signature are fresh (that is what a retry carries), the body is the same.
        """
        with self._lock:
            original = self.webhook_deliveries[index]
        return self._deliver(original.url, original.prediction_id, original.body, original.webhook_id)

    def wait_for_webhooks(self, count: int = 1, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Block until at least `count` deliveries were attempted; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.webhook_deliveries) >= count, timeout):
                raise TimeoutError(f"{len(self.webhook_deliveries)} webhook deliveries, wanted {count}")
            return list(self.webhook_deliveries)

    def _schedule_webhook(self, record: FakePrediction) -> None:
        # Called with the lock held. One timer per prediction, re-armed when its end moves.
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None
        if not record.webhook or record.webhook_sent or self._stopping.is_set():
            return
        delay = 0.0 if record.canceled is not None else record.created + record.seconds - time.monotonic()
        record.timer = threading.Timer(max(delay, 0.0), self._send_completed, args=(record.id,))
        record.timer.daemon = True
        record.timer.start()

    def _send_completed(self, prediction_id: str) -> None:
        with self._lock:
            record = self.predictions[prediction_id]
            now = time.monotonic()
            if record.webhook_sent or not record.webhook:
                return
            if record.status_at(now) not in FINAL_STATUSES:
                self._schedule_webhook(record)  # fired a hair early, or the end moved: re-arm
                return
            record.webhook_sent = True
            if "completed" not in record.webhook_events_filter:
                return
            body = json.dumps(self._render(record, now, with_webhook=True)).encode()
            url = record.webhook
        self._deliver(url, prediction_id, body, None)

    def _deliver(self, url: str, prediction_id: str, body: bytes, webhook_id: str | None) -> WebhookDelivery:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Replicate-Webhook/fake",
            **self.sign(body, webhook_id=webhook_id),
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (test URL)
        # No proxies: the receiver is on loopback whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        status_code: int | None = None
        error: str | None = None
        try:
            with opener.open(request, timeout=self.webhook_timeout) as response:
                status_code = response.status
        except urllib.error.HTTPError as exc:
            status_code = exc.code
            exc.close()
        except OSError as exc:
            error = repr(exc)
        delivery = WebhookDelivery(url, prediction_id, headers["webhook-id"], headers, body, status_code, error)
        with self._changed:
            self.webhook_deliveries.append(delivery)
            self._changed.notify_all()
        return delivery

    # -- request handling ------------------------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: Message, body: bytes) -> _Reply:
        path = unquote(urlsplit(raw_path).path)
        authorization = headers.get("Authorization") or ""
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else None
        if path.startswith("/files/"):
            with self._lock:
                self.requests.append((method, path, token))
            return self._serve_file(method, path)

        with self._lock:
            self.requests.append((method, path, token))
            self._token_counts[token] += 1
            fault = self._faults.pop(0) if self._faults else None
            delay = self._delays.pop(0) if self._delays else 0.0
            authorized = token in self.tokens
        if fault is not None:
            reply = self._fault_reply(*fault)
        elif not authorized:
            reply = _problem(401, "You did not pass a valid authentication token", "Unauthenticated")
        else:
            reply = self._route(method, path, headers, body, token, urlsplit(raw_path).query)
        reply.delay = delay
        return reply

    def _fault_reply(self, status: int, retry_after: int) -> _Reply:
        if status == 429:
            reply = _problem(429, f"Request was throttled. Expected available in {retry_after} second.")
            reply.headers["Retry-After"] = str(retry_after)
            return reply
        if status == 502:
            # What a proxy in front of the API answers: HTML, so the client finds no JSON detail.
            page = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
            return _Reply(502, page, content_type="text/html")
        return _problem(status, f"Fake server error {status}")

    def account_of(self, token: str | None) -> str:
        return self.accounts.get(token or "", "default")

    def _list(self, raw_query: str, token: str | None) -> _Reply:
        # Newest first, `page_size` a page; the cursor is an offset, opaque to the client.
        with self._lock:
            self.list_calls += 1
            if not self.list_enabled:
                return _problem(404, "Not found.")
            now = time.monotonic()
            account = self.account_of(token)
            records = sorted(
                (r for r in self.predictions.values() if r.account == account), key=lambda r: r.created, reverse=True
            )
            offset = int(parse_qs(raw_query).get("cursor", ["0"])[0] or 0)
            page = records[offset : offset + self.page_size]
            results = [self._render(record, now, listed=True) for record in page]
        more = offset + self.page_size < len(records)
        following = f"{self.url}/v1/predictions?cursor={offset + self.page_size}" if more else None
        previous = f"{self.url}/v1/predictions?cursor={max(offset - self.page_size, 0)}" if offset else None
        return _json_reply(200, {"previous": previous, "next": following, "results": results})

    def _route(
        self, method: str, path: str, headers: Message, body: bytes, token: str | None, raw_query: str = ""
    ) -> _Reply:
        prefer_wait = "wait" in (headers.get("Prefer") or "")
        if method == "POST" and (match := _MODEL_CREATE.match(path)):
            model = f"{match['owner']}/{match['name']}"
            return self._create(body, model=model, token=token, prefer_wait=prefer_wait)
        if method == "POST" and path == "/v1/predictions":
            return self._create(body, model=None, token=token, prefer_wait=prefer_wait)
        if method == "GET" and path == "/v1/predictions":
            return self._list(raw_query, token)
        if method == "GET" and (match := _PREDICTION.match(path)):
            with self._lock:
                record = self.predictions.get(match["id"])
                if record is None or record.account != self.account_of(token):
                    return _problem(404, "Not found.")
                return _json_reply(200, self._render(record, time.monotonic(), with_webhook=True))
        if method == "POST" and (match := _CANCEL.match(path)):
            return self._cancel(match["id"], token)
        if method == "GET" and path == "/v1/webhooks/default/secret":
            return _json_reply(200, {"key": self.webhook_secret})
        if method == "POST" and path == "/v1/files":
            return self._upload(headers, body)
        return _problem(404, "Not found.")

    def _create(self, body: bytes, *, model: str | None, token: str | None, prefer_wait: bool) -> _Reply:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return _problem(400, "Request body is not valid JSON.")
        if not isinstance(data, dict):
            return _problem(400, "Request body must be a JSON object.")
        inputs = data.get("input")
        if not isinstance(inputs, dict):
            return _problem(422, "- input: Invalid type. Expected: object", "Input validation failed")

        if model is None:
            version_ref = data.get("version")
            if not isinstance(version_ref, str) or not version_ref:
                return _problem(422, "- version: version is required", "Invalid version")
            model, version = self._resolve_version(version_ref)
        else:
            # Model endpoints run the latest version; a stable fake 64-hex id stands in for it.
            version = hashlib.sha256(model.encode()).hexdigest()

        prompt = str(inputs.get("prompt", ""))
        scenario = next((marker for marker in MARKERS if f"[{marker}]" in prompt), "ok")
        if scenario == "ok" and self._uses_poisoned_upload(inputs):
            scenario = "fail"
        seconds = self.predict_seconds
        if scenario == "slow":
            seconds = max(seconds * SLOW_FACTOR, SLOW_MINIMUM_SECONDS)
        # Outputs are made up front (outside the lock: Pillow is the slow part).
        files = (
            {}
            if scenario in ("fail", "nsfw", "empty", "null", "aborted")
            else _make_outputs(model, inputs, self._input_file)
        )
        if scenario == "nsfw-one" and len(files) > 1:
            files.popitem()

        events = data.get("webhook_events_filter")
        record = FakePrediction(
            id=_new_id(),
            model=model,
            version=version,
            input=inputs,
            token=token,
            account=self.account_of(token),
            scenario=scenario,
            seconds=seconds,
            created=time.monotonic(),
            created_at=datetime.now(UTC),
            files=files,
            webhook=data.get("webhook") or None,
            webhook_events_filter=list(events) if isinstance(events, list) else list(ALL_WEBHOOK_EVENTS),
            expired=scenario == "expired",
        )
        with self._lock:
            self.predictions[record.id] = record
            self.created_count += 1
            self._schedule_webhook(record)
            reply = _json_reply(201, self._render(record, time.monotonic(), just_created=not prefer_wait))
            if self._dropped_creates:
                self._dropped_creates -= 1
                reply.drop = True
        if prefer_wait and self.hold_waits:
            time.sleep(min(max(record.created + record.seconds - time.monotonic(), 0.0), self.hold_waits))
            with self._lock:
                held = _json_reply(201, self._render(record, time.monotonic()))
            held.drop = reply.drop
            reply = held
        return reply

    def _resolve_version(self, ref: str) -> tuple[str, str]:
        if ":" in ref:  # "owner/name:version"
            model, _, version = ref.partition(":")
            return model, version
        if "/" in ref:  # "owner/name": the latest version of that model
            return ref, hashlib.sha256(ref.encode()).hexdigest()
        return self.versions.get(ref, "fake/unknown-version"), ref

    def _cancel(self, prediction_id: str, token: str | None = None) -> _Reply:
        with self._lock:
            self.cancel_calls += 1
            record = self.predictions.get(prediction_id)
            if record is None or record.account != self.account_of(token):
                return _problem(404, "Not found.")
            record.cancel_count += 1
            now = time.monotonic()
            # Canceling a finished prediction changes nothing, as on Replicate.
            if record.status_at(now) not in FINAL_STATUSES:
                record.canceled = now
                self._schedule_webhook(record)
            return _json_reply(200, self._render(record, now))

    def _upload(self, headers: Message, body: bytes) -> _Reply:
        content_type = headers.get("Content-Type") or ""
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            return _problem(400, "Expected a multipart/form-data upload.")
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") != "content":
                continue
            data = part.get_payload(decode=True) or b""
            assert isinstance(data, bytes)  # a decoded leaf part
            file_id = _new_id()
            now = datetime.now(UTC)
            sha256 = hashlib.sha256(data).hexdigest()
            payload = {
                "id": file_id,
                "name": part.get_filename() or "file",
                "content_type": part.get_content_type(),
                "size": len(data),
                "etag": sha256[:32],
                "checksums": {"sha256": sha256},
                "metadata": {},
                "created_at": _iso(now),
                "expires_at": _iso(now + timedelta(days=1)),
                "urls": {"get": f"{self.url}/v1/files/{file_id}"},
            }
            with self._lock:
                self.uploads[file_id] = {**payload, "data": data}
            return _json_reply(201, payload)
        return _problem(422, "- content: file is required")

    def _input_file(self, value: Any) -> bytes:
        """The bytes of a file input: an upload to this fake, a data URL, or an http URL (a
        signed storage URL, as the app sends from S3)."""
        if not isinstance(value, str):
            return b""
        if match := re.search(r"/v1/files/([A-Za-z0-9]+)", value):
            with self._lock:
                upload = self.uploads.get(match[1])
            return upload["data"] if upload else b""
        if value.startswith("data:"):
            return base64.b64decode(value.partition(",")[2])
        if value.startswith(("http://", "https://")):
            with contextlib.suppress(OSError, ValueError):
                return httpx.get(value, timeout=10).content
        return b""

    def _uses_poisoned_upload(self, inputs: dict[str, Any]) -> bool:
        for value in inputs.values():
            match = re.search(r"/v1/files/([A-Za-z0-9]+)", value) if isinstance(value, str) else None
            if match:
                with self._lock:
                    upload = self.uploads.get(match[1])
                if upload and _poisoned(upload["data"]):
                    return True
        return False

    def _serve_file(self, method: str, path: str) -> _Reply:
        match = _FILE.match(path)
        with self._lock:
            record = self.predictions.get(match["id"]) if match and method == "GET" else None
            if (
                match is None
                or record is None
                or record.expired
                or record.status_at(time.monotonic()) != "succeeded"
                or match["filename"] not in record.files
            ):
                return _Reply(404, b"Not Found", content_type="text/plain")
            content_type, data = record.files[match["filename"]]
        return _Reply(200, data, content_type=content_type)

    def _render(
        self,
        record: FakePrediction,
        now: float,
        *,
        just_created: bool = False,
        listed: bool = False,
        with_webhook: bool = False,
    ) -> dict[str, Any]:
        """The prediction as the API shows it at monotonic time `now` (lock held)."""
        status = "starting" if just_created else record.status_at(now)
        created_at = record.created_at
        start_offset = record.seconds * STARTING_SHARE
        end_offset = (record.canceled - record.created) if record.canceled is not None else record.seconds
        started = record.scenario != "aborted" and (
            status in ("processing", "succeeded", "failed") or (status == "canceled" and end_offset >= start_offset)
        )
        final = status in FINAL_STATUSES

        output: list[str] | str | None = None
        if status == "succeeded" and record.scenario != "null":
            output = [f"{self.url}/files/{record.id}/{name}" for name in record.files]
            if record.model in SINGLE_OUTPUT_MODELS and output:
                output = output[0]
        error = None
        if status == "failed":
            error = NSFW_ERROR if record.scenario == "nsfw" else FAIL_ERROR

        # Progress as of now, or as of the moment a cancel stopped the run.
        moment = record.created + end_offset if final else now
        running = record.seconds - start_offset
        fraction = min(max((moment - record.created - start_offset) / running, 0.0), 1.0) if running else 1.0
        logs = _logs(record, status, fraction) if started else ""
        metrics = {}
        if final and started:
            metrics = {
                "predict_time": round(max(end_offset - start_offset, 0.0), 3),
                "total_time": round(end_offset, 3),
            }
        rendered: dict[str, Any] = {
            "id": record.id,
            "model": record.model,
            "version": record.version,
            "status": status,
            "input": record.input,
            "output": output,
            "error": error,
            "logs": logs,
            "metrics": metrics,
            "created_at": _iso(created_at),
            "started_at": _iso(created_at + timedelta(seconds=start_offset)) if started else None,
            "completed_at": _iso(created_at + timedelta(seconds=end_offset)) if final else None,
            "urls": {
                "get": f"{self.url}/v1/predictions/{record.id}",
                "cancel": f"{self.url}/v1/predictions/{record.id}/cancel",
            },
        }
        # Where it came from, and whether its data was removed: fields of every prediction.
        rendered |= {"source": record.source, "data_removed": False}
        if listed:  # the list's documented item: no logs, no webhook
            del rendered["logs"]
        elif with_webhook and record.webhook:
            rendered |= {"webhook": record.webhook, "webhook_events_filter": record.webhook_events_filter}
        return rendered | record.overrides


def _logs(record: FakePrediction, status: str, fraction: float) -> str:
    # tqdm-style progress lines, so `Prediction.progress` in the client parses them.
    seed = _seed(record.input)
    try:
        steps = min(max(int(record.input.get("num_inference_steps", 4)), 1), 50)
    except (TypeError, ValueError):
        steps = 4
    done = steps if status == "succeeded" else int(fraction * steps)
    lines = [f"Using seed: {seed}"]
    for step in range(done + 1):
        percent = step * 100 // steps
        bar = ("█" * (step * 10 // steps)).ljust(10)
        lines.append(f"{percent:3d}%|{bar}| {step}/{steps} [00:00<00:00, 4.00it/s]")
    if status == "failed" and record.scenario == "nsfw":
        lines.append("Potential NSFW content detected in the output.")
    elif status == "failed":
        lines += ["Traceback (most recent call last):", f"torch.OutOfMemoryError: {FAIL_ERROR}"]
    return "\n".join(lines) + "\n"


def _seed(inputs: Mapping[str, Any]) -> int:
    if isinstance(inputs.get("seed"), int):
        return inputs["seed"]
    return int.from_bytes(hashlib.sha256(str(inputs.get("prompt", "")).encode()).digest()[:4], "big")


def _make_outputs(
    model: str, inputs: Mapping[str, Any], input_file: Callable[[Any], bytes]
) -> dict[str, tuple[str, bytes]]:
    prompt = str(inputs.get("prompt", ""))
    seed = _seed(inputs)
    if "video" in model.lower() or "duration" in inputs:
        make = _corrupt_mp4 if "[corrupt]" in prompt else _fake_mp4
        return {"output.mp4": ("video/mp4", make(f"{prompt}|{seed}"))}
    if "esrgan" in model.lower() or "scale" in inputs:
        return {"output.png": ("image/png", _upscaled(input_file(inputs.get("image")), inputs.get("scale", 4)))}
    image_format, content_type, extension = IMAGE_FORMATS.get(
        str(inputs.get("output_format", "png")).lower(), IMAGE_FORMATS["png"]
    )
    try:
        count = min(max(int(inputs.get("num_outputs", 1)), 1), 4)
    except (TypeError, ValueError):
        count = 1
    return {
        f"out-{index}.{extension}": (content_type, _image(f"{prompt}|{seed}|{index}", image_format))
        for index in range(count)
    }


def _image(key: str, image_format: str) -> bytes:
    digest = hashlib.sha256(key.encode()).digest()
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(digest[0:3]))
    x, y = digest[6] % (IMAGE_SIZE // 2), digest[7] % (IMAGE_SIZE // 2)
    ImageDraw.Draw(image).ellipse((x, y, x + IMAGE_SIZE // 2, y + IMAGE_SIZE // 2), fill=tuple(digest[3:6]))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def _upscaled(data: bytes, scale: Any) -> bytes:
    """The input `scale` times larger (Real-ESRGAN's default is 4), or a small grey square if
    the input could not be read (the real model would fail; tests that care send a picture)."""
    try:
        factor = min(max(float(scale), 1.0), 10.0)
    except (TypeError, ValueError):
        factor = 4.0
    try:
        with Image.open(io.BytesIO(data)) as image:
            picture = image.convert("RGB")
    except OSError:
        picture = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128))
    size = (round(picture.width * factor), round(picture.height * factor))
    buffer = io.BytesIO()
    picture.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue()


def _fake_mp4(key: str) -> bytes:
    """A real, playable one-second H.264 MP4 (64x64, 6 fps), its colour derived from `key`."""
    colour = tuple(hashlib.sha256(key.encode()).digest()[:3])
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        with av.open(file.name, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=6, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            for _ in range(6):
                frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), colour))
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return Path(file.name).read_bytes()


def _corrupt_mp4(key: str) -> bytes:
    # An ISO-BMFF `ftyp` box (what sniffers check) and an `mdat` box of filler: not playable.
    ftyp = b"ftyp" + b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41"
    payload = hashlib.sha256(key.encode()).digest() * 4
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in delay_next must not keep the process alive
    fake: FakeReplicate

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind httpx
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output quiet; fake.requests is the log

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the empty line after the last chunk
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        reply = fake._handle(method, self.path, self.headers, self._read_body())
        if reply.delay:
            fake._stopping.wait(reply.delay)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (its timeout) or stop() cut the line: nobody to answer


@functools.cache
def _tls() -> ssl.SSLContext:
    # Building a context reads the whole CA bundle: tens of milliseconds of CPU for each client.
    return httpx.create_ssl_context()


def replicate_client(
    fake: FakeReplicate,
    token: str | None = None,
    *,
    timeout: float | None = None,
    poll_interval: float = 0.01,
) -> replicate.Client:
    """A real client pointed at `fake`, polling fast; `timeout` (seconds) caps every phase."""
    client = replicate.Client(
        api_token=token if token is not None else sorted(fake.tokens)[0],
        base_url=fake.url,
        timeout=httpx.Timeout(timeout) if timeout is not None else None,
        # The client's own transport, on a TLS context shared by every client this makes.
        transport=httpx.HTTPTransport(verify=_tls()),
    )
    client.poll_interval = poll_interval
    return client


def _poisoned(data: bytes) -> bool:
    if POISON in data:
        return True
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format == "PNG" and image.convert("RGB").getpixel((0, 0)) == POISON_PIXEL
    except OSError:
        return False
