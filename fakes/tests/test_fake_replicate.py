"""The fake Replicate server, exercised only through the real `replicate` client (no patching)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import replicate
from PIL import Image
from replicate.exceptions import ModelError, ReplicateError
from replicate.prediction import Prediction
from replicate.webhook import InvalidSignatureError, WebhookSigningSecret

from fakes.replicate import FAIL_ERROR, NSFW_ERROR, FakeReplicate, replicate_client

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODEL = "black-forest-labs/flux-schnell"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(predict_seconds=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One plain client for downloads: httpx.get() would build a new SSL context every call.
    with httpx.Client() as plain:
        yield plain


@pytest.fixture
def client(fake: FakeReplicate) -> replicate.Client:
    return replicate_client(fake)


class _Receiver:
    """A loopback endpoint that records webhook POSTs and answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append((headers, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/replicate"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    endpoint = _Receiver()
    yield endpoint
    endpoint.close()


def _until_final(prediction: Prediction, timeout: float = 5.0) -> list[str]:
    """Reload until a final status; returns every status seen, bounded by `timeout`."""
    seen: list[str] = [prediction.status]
    deadline = time.monotonic() + timeout
    while prediction.status not in ("succeeded", "failed", "canceled"):
        assert time.monotonic() < deadline, f"still {prediction.status} after {timeout}s"
        time.sleep(0.01)
        prediction.reload()
        seen.append(prediction.status)
    return seen


def test_prediction_created_by_model_finishes_with_a_downloadable_png(http, fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "a red fox"})
    assert prediction.status == "starting"
    assert prediction.model == MODEL
    assert prediction.urls["get"] == f"{fake.url}/v1/predictions/{prediction.id}"

    prediction.wait()

    assert prediction.status == "succeeded"
    assert prediction.error is None
    assert prediction.metrics["predict_time"] > 0
    assert prediction.completed_at and prediction.started_at
    assert prediction.progress is not None and prediction.progress.percentage == 1.0
    [url] = prediction.output
    assert url.startswith(f"{fake.url}/files/{prediction.id}/")
    download = http.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(download.content)).size == (64, 64)

    record = fake.predictions[prediction.id]
    assert (record.model, record.token, record.input) == (MODEL, "r8_test_token", {"prompt": "a red fox"})
    assert fake.created_count == 1


def test_prediction_created_by_version_reports_the_versions_model(http, fake, client):
    fake.versions["5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637"] = "acme/sdxl"

    prediction = client.predictions.create(
        version="5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637",
        input={"prompt": "a lighthouse", "num_outputs": 2, "output_format": "webp"},
    )
    statuses = _until_final(prediction)

    assert statuses[0] == "starting" and statuses[-1] == "succeeded"
    assert prediction.model == "acme/sdxl"
    assert len(prediction.output) == 2
    assert all(url.endswith(".webp") for url in prediction.output)
    assert http.get(prediction.output[1]).headers["content-type"] == "image/webp"


def test_outputs_are_the_same_for_the_same_prompt_and_differ_for_another(http, fake, client):
    def picture(prompt: str) -> bytes:
        prediction = client.models.predictions.create(model=MODEL, input={"prompt": prompt})
        prediction.wait()
        return http.get(prediction.output[0]).content

    assert picture("a cat") == picture("a cat") != picture("a dog")


def test_status_moves_from_starting_through_processing_to_succeeded():
    with FakeReplicate(predict_seconds=0.3) as slowish:
        prediction = replicate_client(slowish).models.predictions.create(model=MODEL, input={"prompt": "x"})
        statuses = _until_final(prediction)

    assert statuses[0] == "starting"
    assert "processing" in statuses
    assert statuses[-1] == "succeeded"
    assert statuses.index("processing") > statuses.index("starting")


@pytest.mark.parametrize(
    ("prompt", "error"),
    [("a castle [fail]", FAIL_ERROR), ("[nsfw] something", NSFW_ERROR)],
)
def test_failure_markers_end_failed_with_the_models_error(client, prompt, error):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": prompt})
    prediction.wait()

    assert prediction.status == "failed"
    assert prediction.error == error
    assert prediction.output is None


def test_a_failed_prediction_makes_run_raise_model_error(client):
    with pytest.raises(ModelError) as excinfo:
        client.run(MODEL, input={"prompt": "[fail]"})
    assert "CUDA out of memory" in str(excinfo.value)


def test_run_with_prefer_wait_returns_plain_urls_for_the_fakes_http_files(http, fake, client):
    # run() wraps only https: and data: URLs in FileOutput; the fake's http: URLs stay strings.
    [output] = client.run(MODEL, input={"prompt": "a boat"})
    assert isinstance(output, str) and output.startswith(fake.url)
    assert http.get(output).content.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(("prompt", "output"), [("[empty] x", []), ("[null] x", None)])
def test_safety_filter_markers_succeed_without_images(client, prompt, output):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": prompt})
    prediction.wait()

    assert prediction.status == "succeeded"
    assert prediction.output == output


def test_expired_outputs_answer_404(http, fake, client):
    expired = client.models.predictions.create(model=MODEL, input={"prompt": "[expired] old"})
    fresh = client.models.predictions.create(model=MODEL, input={"prompt": "new"})
    expired.wait()
    fresh.wait()

    assert expired.status == "succeeded"
    assert http.get(expired.output[0]).status_code == 404
    assert http.get(fresh.output[0]).status_code == 200
    fake.expire(fresh.id)  # an hour later
    assert http.get(fresh.output[0]).status_code == 404


def test_video_models_serve_an_mp4_typed_file(http, client):
    prediction = client.models.predictions.create(model="acme/text-to-video", input={"prompt": "waves"})
    prediction.wait()

    [url] = prediction.output
    response = http.get(url)
    assert url.endswith(".mp4")
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"


def test_real_esrgan_by_its_published_version_answers_one_url_of_its_input_made_larger(http, client):
    source = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(source, format="PNG")
    source.seek(0)
    source.name = "small.png"
    prediction = client.predictions.create(
        version="42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b",
        input={"image": source, "scale": 2, "face_enhance": False},
    )
    prediction.wait()
    # Real-ESRGAN's output schema is one URI: a string, not a list.
    assert prediction.model == "nightmareai/real-esrgan" and isinstance(prediction.output, str)
    with Image.open(io.BytesIO(http.get(prediction.output).content)) as larger:
        assert larger.size == (80, 60) and larger.getpixel((40, 30)) == (10, 200, 30)


def test_seedance_with_an_image_answers_one_mp4_url(http, client):
    prediction = client.models.predictions.create(
        model="bytedance/seedance-1-lite",
        input={"prompt": "it moves", "image": "data:image/png;base64,", "duration": 3},
    )
    prediction.wait()
    assert isinstance(prediction.output, str) and http.get(prediction.output).content[4:8] == b"ftyp"


def test_nsfw_one_holds_back_one_of_several_images(client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "tulips [nsfw-one]", "num_outputs": 4})
    prediction.wait()
    assert prediction.status == "succeeded" and len(prediction.output) == 3


def test_cancel_stops_a_slow_prediction_and_is_counted(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "[slow] mountains"})
    assert fake.status_of(prediction.id) in ("starting", "processing")

    prediction.cancel()

    assert prediction.status == "canceled"
    assert prediction.output is None
    assert prediction.completed_at is not None
    prediction.reload()
    assert prediction.status == "canceled"
    assert fake.cancel_calls == 1
    assert fake.predictions[prediction.id].cancel_count == 1


def test_canceling_a_finished_prediction_changes_nothing(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "done"})
    prediction.wait()

    prediction.cancel()

    assert prediction.status == "succeeded"
    assert fake.cancel_calls == 1


def test_set_predict_seconds_finishes_a_slow_prediction_now(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "[slow] sweeper"})
    fake.set_predict_seconds(prediction.id, 0)
    prediction.reload()
    assert prediction.status == "succeeded"


def test_a_500_on_create_is_a_replicate_error_and_creates_nothing(fake, client):
    fake.fail_next(1, 500)

    with pytest.raises(ReplicateError) as excinfo:
        client.models.predictions.create(model=MODEL, input={"prompt": "x"})

    assert excinfo.value.status == 500
    assert fake.created_count == 0
    client.models.predictions.create(model=MODEL, input={"prompt": "x"})  # the fault was used up
    assert fake.created_count == 1


def test_a_429_on_create_is_not_retried_by_the_client(fake, client):
    fake.fail_next(1, 429)

    with pytest.raises(ReplicateError) as excinfo:
        client.models.predictions.create(model=MODEL, input={"prompt": "x"})

    assert excinfo.value.status == 429
    assert "throttled" in excinfo.value.detail
    assert len(fake.requests) == 1


def test_a_503_on_create_is_not_retried_either(fake, client):
    fake.fail_next(1, 503)
    with pytest.raises(ReplicateError) as excinfo:
        client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    assert excinfo.value.status == 503


@pytest.mark.parametrize("status", [429, 503])
def test_the_client_retries_429_and_503_on_get_by_itself(fake, client, status):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    fake.fail_next(2, status, retry_after=0)  # Retry-After: 0 keeps the test fast

    prediction.reload()  # no exception: the client's transport retried

    gets = [request for request in fake.requests if request[0] == "GET"]
    assert len(gets) == 3


def test_a_429_on_get_honours_retry_after(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    fake.fail_next(1, 429)  # Retry-After: 1
    started = time.monotonic()
    prediction.reload()
    assert time.monotonic() - started >= 1.0


def test_a_500_on_get_is_not_retried(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    fake.fail_next(1, 500)
    with pytest.raises(ReplicateError) as excinfo:
        prediction.reload()
    assert excinfo.value.status == 500


def test_a_502_html_page_gives_an_error_without_detail(fake, client):
    fake.fail_next(1, 502)
    with pytest.raises(ReplicateError) as excinfo:
        client.predictions.get("anything")
    assert (excinfo.value.status, excinfo.value.detail) == (502, None)


def test_create_without_wait_ignores_the_client_timeout(fake):
    # The client sends create with timeout=None unless `wait` is given: it never times out.
    client = replicate_client(fake, timeout=0.1)
    fake.delay_next(1, 0.4)
    started = time.monotonic()

    client.models.predictions.create(model=MODEL, input={"prompt": "x"})

    assert time.monotonic() - started >= 0.4


def test_create_with_wait_times_out_after_the_work_was_done(fake):
    client = replicate_client(fake)
    fake.delay_next(1, 10.0)  # cut short by the fake's stop() at teardown

    with pytest.raises(httpx.ReadTimeout):  # read timeout is wait + 0.5 s
        client.models.predictions.create(model=MODEL, input={"prompt": "x"}, wait=1)

    # The prediction exists although the client never heard of it: retrying create would pay twice.
    assert fake.created_count == 1


def test_a_slow_reload_times_out_as_an_httpx_error_and_is_not_retried(fake):
    client = replicate_client(fake, timeout=0.2)
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    fake.delay_next(1, 10.0)

    with pytest.raises(httpx.ReadTimeout):
        prediction.reload()

    assert [method for method, _path, _token in fake.requests] == ["POST", "GET"]


def test_an_unreachable_api_is_an_httpx_connect_error(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    fake.stop()

    with pytest.raises(httpx.ConnectError):
        prediction.reload()


def test_a_wrong_token_gets_401(fake):
    client = replicate_client(fake, token="r8_wrong")
    with pytest.raises(ReplicateError) as excinfo:
        client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    assert excinfo.value.status == 401
    assert excinfo.value.detail == "You did not pass a valid authentication token"
    assert fake.created_count == 0


def test_tokens_are_counted_and_can_be_revoked():
    with FakeReplicate(tokens={"r8_a", "r8_b"}) as fake:
        replicate_client(fake, "r8_a").models.predictions.create(model=MODEL, input={"prompt": "1"})
        replicate_client(fake, "r8_b").models.predictions.create(model=MODEL, input={"prompt": "2"})
        fake.tokens.discard("r8_a")
        with pytest.raises(ReplicateError):
            replicate_client(fake, "r8_a").models.predictions.create(model=MODEL, input={"prompt": "3"})

        assert fake.tokens_used() == {"r8_a": 2, "r8_b": 1}
        assert [record.token for record in fake.predictions.values()] == ["r8_a", "r8_b"]


def test_unknown_prediction_is_a_404(client):
    with pytest.raises(ReplicateError) as excinfo:
        client.predictions.get("nope")
    assert excinfo.value.status == 404


def test_file_objects_in_input_are_uploaded_first(fake, client):
    photo = io.BytesIO(b"not really a photo")
    photo.name = "me.png"

    prediction = client.models.predictions.create(
        model="acme/image-edit", input={"prompt": "make it blue", "image": photo}
    )

    [upload] = fake.uploads.values()
    assert upload["data"] == b"not really a photo"
    assert upload["name"] == "me.png"
    assert prediction.input["image"] == upload["urls"]["get"]


def test_completed_webhook_is_signed_so_the_client_validates_it(fake, client, receiver):
    prediction = client.models.predictions.create(
        model=MODEL, input={"prompt": "a fox"}, webhook=receiver.url, webhook_events_filter=["completed"]
    )

    [delivery] = fake.wait_for_webhooks(1)

    assert delivery.status_code == 200
    assert delivery.webhook_id.startswith("msg_")
    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert (payload["id"], payload["status"]) == (prediction.id, "succeeded")
    assert payload["output"][0].startswith(fake.url)

    secret = client.webhooks.default.secret()
    assert secret.key == fake.webhook_secret
    # validate() returns None when the signature holds and raises otherwise.
    assert replicate.webhooks.validate(headers=headers, body=body.decode(), secret=secret, tolerance=60) is None


def test_a_tampered_webhook_body_is_rejected(fake, client, receiver):
    client.models.predictions.create(model=MODEL, input={"prompt": "x"}, webhook=receiver.url)
    fake.wait_for_webhooks(1)
    [(headers, body)] = receiver.received
    tampered = body.replace(b'"succeeded"', b'"failed"')
    secret = client.webhooks.default.secret()

    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(headers=headers, body=tampered.decode(), secret=secret)
    with pytest.raises(InvalidSignatureError):
        replicate.webhooks.validate(
            headers=headers, body=body.decode(), secret=WebhookSigningSecret(key=FakeReplicate().webhook_secret)
        )


def test_canceling_sends_a_canceled_webhook(fake, client, receiver):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "[slow]"}, webhook=receiver.url)
    prediction.cancel()

    [delivery] = fake.wait_for_webhooks(1)

    assert json.loads(delivery.body)["status"] == "canceled"


def test_redelivery_repeats_the_webhook_id(fake, client, receiver):
    client.models.predictions.create(model=MODEL, input={"prompt": "x"}, webhook=receiver.url)
    fake.wait_for_webhooks(1)

    again = fake.redeliver(0)

    first, second = receiver.received
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == again.webhook_id
    assert first[1] == second[1]
    secret = WebhookSigningSecret(key=fake.webhook_secret)
    replicate.webhooks.validate(headers=second[0], body=second[1].decode(), secret=secret)


def test_a_failing_receiver_is_recorded(fake, client, receiver):
    receiver.status = 500
    client.models.predictions.create(model=MODEL, input={"prompt": "x"}, webhook=receiver.url)
    [delivery] = fake.wait_for_webhooks(1)
    assert delivery.status_code == 500


def test_sign_lets_tests_craft_their_own_webhooks(fake):
    body = json.dumps({"id": "abc", "status": "succeeded"}).encode()
    headers = fake.sign(body)
    secret = WebhookSigningSecret(key=fake.webhook_secret)
    replicate.webhooks.validate(headers=headers, body=body.decode(), secret=secret, tolerance=60)


# --- The predictions list, as Replicate's reference documents it ----------------------------


def test_the_list_pages_newest_first_with_the_documented_fields_and_no_webhook(http):
    with FakeReplicate(page_size=2) as fake:
        client = replicate_client(fake)
        made = [
            client.models.predictions.create(
                model="owner/model", input={"prompt": f"p{n}"}, webhook="https://example.com/hook"
            ).id
            for n in range(3)
        ]
        page = client.predictions.list()
        assert [p.id for p in page.results] == made[:0:-1] and page.next
        rest = client.predictions.list(cursor=page.next)
        assert [p.id for p in rest.results] == [made[0]] and rest.next is None
        raw = http.get(f"{fake.url}/v1/predictions", headers={"Authorization": "Bearer r8_test_token"}).json()
        item = raw["results"][0]
        assert {"id", "model", "version", "status", "input", "output", "error", "metrics", "created_at", "urls"} <= set(
            item
        )
        assert item["source"] == "api" and item["data_removed"] is False
        assert "webhook" not in item and "logs" not in item
        # A get shows the webhook, as real webhook bodies do.
        got = http.get(f"{fake.url}/v1/predictions/{made[0]}", headers={"Authorization": "Bearer r8_test_token"})
        assert got.json()["webhook"] == "https://example.com/hook"


def test_another_account_s_token_cannot_see_get_or_cancel_a_prediction():
    with FakeReplicate(tokens={"r8_a", "r8_b"}, accounts={"r8_a": "a", "r8_b": "b"}) as fake:
        mine = replicate_client(fake, "r8_a").models.predictions.create(model="owner/model", input={"prompt": "x"})
        theirs = replicate_client(fake, "r8_b")
        assert theirs.predictions.list().results == []
        for call in (theirs.predictions.get, theirs.predictions.cancel):
            with pytest.raises(ReplicateError) as error:
                call(mine.id)
            assert error.value.status == 404
        assert replicate_client(fake, "r8_a").predictions.get(mine.id).id == mine.id


def test_a_provider_without_the_list_answers_404(fake, client):
    fake.list_enabled = False
    with pytest.raises(ReplicateError) as error:
        client.predictions.list()
    assert error.value.status == 404


def test_a_dropped_create_answer_still_made_the_prediction(fake, client):
    fake.drop_next_creates(1)
    with pytest.raises(httpx.TransportError):
        client.models.predictions.create(model="owner/model", input={"prompt": "cut"})
    assert fake.created_count == 1
    (listed,) = client.predictions.list().results
    assert listed.input == {"prompt": "cut"}


def test_an_aborted_prediction_never_starts_and_ends_aborted_in_get_list_and_webhook(http, fake, receiver):
    # Replicate's lifecycle: "aborted: the prediction exceeded its deadline before it could
    # start running" (not billed: no metrics). The pinned client cannot read it (below).
    headers = {"Authorization": "Bearer r8_test_token"}
    created = http.post(
        f"{fake.url}/v1/models/{MODEL}/predictions",
        json={
            "input": {"prompt": "Too late [aborted]"},
            "webhook": receiver.url,
            "webhook_events_filter": ["completed"],
        },
        headers=headers,
    ).json()
    assert created["status"] == "starting"
    fake.set_predict_seconds(created["id"], 0)
    got = http.get(f"{fake.url}/v1/predictions/{created['id']}", headers=headers).json()
    assert (got["status"], got["output"], got["started_at"], got["metrics"]) == ("aborted", None, None, {})
    assert got["completed_at"]
    listed = http.get(f"{fake.url}/v1/predictions", headers=headers).json()["results"]
    assert [item["status"] for item in listed] == ["aborted"]
    (delivery,) = fake.wait_for_webhooks(1)
    assert json.loads(delivery.body)["status"] == "aborted"


def test_the_pinned_client_cannot_read_an_aborted_prediction(fake, client):
    # Why the product reads Replicate's JSON itself: the client's model raises a pydantic error,
    # which is not a ReplicateError, for a get and for the whole list page it is in.
    prediction_id = fake.add_prediction(status="aborted")
    with pytest.raises(Exception) as raised:
        client.predictions.get(prediction_id)
    assert type(raised.value).__name__ == "ValidationError"
    assert not isinstance(raised.value, ReplicateError)
    with pytest.raises(Exception, match="aborted"):
        client.predictions.list()


def test_predictions_added_for_another_app_are_listed_with_their_status_and_shape(http, fake):
    fake.add_prediction(status="aborted", source="web")
    fake.add_prediction(status="something-new", input="not an object")
    listed = http.get(f"{fake.url}/v1/predictions", headers={"Authorization": "Bearer r8_test_token"}).json()
    assert [(item["status"], item["source"]) for item in listed["results"]] == [
        ("something-new", "web"),
        ("aborted", "web"),
    ]
    assert listed["results"][0]["input"] == "not an object"
