"""Every result says it was made by AI, verifiably: read back with the C2PA reader (c2pa-python),
each kind of output carries signed Content Credentials naming its model, and a result made from a
picture names that picture as its ingredient; pictures carry the IPTC digital source type too.
The person's own uploads still leave without any metadata."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from core.signing import certificate_pair, dev_signing_credentials
from generation.models import Job, JobOutput, Upload
from generation.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    content_credentials_read,
)
from generation.services import job_create, job_run, job_share
from generation.tests.factories import (
    AIModelFactory,
    local_animator,
    local_edit_model,
    local_model,
    local_upscaler,
    replicate_model,
)
from generation.tests.photos import photo
from generation.tests.polling import run_to_the_end

pytestmark = pytest.mark.django_db

DEV_ROOT = dev_signing_credentials()[2]


def stored(output: JobOutput) -> bytes:
    with default_storage.open(output.file.name) as file:
        return file.read()


def credentials(output: JobOutput, *, trust: bytes = DEV_ROOT) -> dict:
    found = content_credentials_read(stored(output), content_type=output.content_type, trust_anchors=trust)
    assert found is not None, f"{output.job.kind} output carries no Content Credentials"
    return found


def made(found: dict) -> dict:
    """The action that says how the result came to be (after `c2pa.opened` of an ingredient)."""
    [actions] = [a["data"]["actions"] for a in found["manifest"]["assertions"] if a["label"].startswith("c2pa.actions")]
    return actions[-1]


def run(job: Job) -> JobOutput:
    job_run(job_id=job.id)
    return JobOutput.objects.select_related("job__model").filter(job=job).order_by("index")[0]


def test_every_kind_of_output_is_signed_as_made_by_ai_with_its_model(client, creator):
    image = run(job_create(user=creator, model=local_model(max_outputs=2), prompt="A red kite", aspect_ratio="square",
                           num_outputs=2))  # fmt: skip
    client.force_login(creator)
    client.post(reverse("create_edit"), {"model": local_edit_model().pk, "prompt": "Golden hour",
                                         "photo": photo("street.jpg"), "form_token": str(uuid.uuid4())})  # fmt: skip
    edit = run(Job.objects.get(kind="image_edit"))
    upscale = run(job_create(user=creator, model=local_upscaler(2), prompt=image.job.prompt, aspect_ratio="original",
                             source_output=image))  # fmt: skip
    animation = run(job_create(user=creator, model=local_animator(3), prompt="The kite flies", aspect_ratio="original",
                               source_output=image))  # fmt: skip
    video_model = AIModelFactory(key="test-video", name="Preview video", kind="video", credit_cost=2_000,
                                 duration_seconds=1, aspect_ratios={"square": "1:1"})  # fmt: skip
    video = run(job_create(user=creator, model=video_model, prompt="A comet", aspect_ratio="square"))

    outputs = [*JobOutput.objects.filter(job=image.job), edit, upscale, animation, video]
    assert [o.content_type for o in outputs] == ["image/png"] * 4 + ["video/mp4"] * 2
    for output in outputs:
        found = credentials(output)
        # Signed, unaltered, by a certificate that leads to the root this reader trusts.
        assert found["state"] == "Trusted", (output.job.kind, found["report"].get("validation_results"))
        assert found["manifest"]["claim_generator_info"][0]["name"] == "Dream Pixel"
        action = made(found)
        assert action["softwareAgent"]["name"] == output.job.model.name
        assert action["digitalSourceType"] in (TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)

    assert made(credentials(image))["action"] == "c2pa.created" and not credentials(image)["manifest"].get(
        "ingredients"
    )
    assert made(credentials(video))["action"] == "c2pa.created"
    assert made(credentials(edit))["digitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert made(credentials(upscale))["action"] == "c2pa.resized"
    for derived in (edit, upscale, animation):
        [ingredient] = credentials(derived)["manifest"]["ingredients"]
        assert ingredient["relationship"] == "parentOf"
        assert "thumbnail" not in ingredient  # no copy of the picture inside the result
    # A result made from a result names it with its own credentials: the chain goes back to the prompt.
    [source] = credentials(upscale)["manifest"]["ingredients"]
    assert source["active_manifest"] and source["validation_results"]["activeManifest"]["success"]

    # Pictures also carry the IPTC digital source type in XMP, for tools that read only that.
    for output, source_type in ((image, TRAINED_ALGORITHMIC_MEDIA), (edit, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),
                                (upscale, TRAINED_ALGORITHMIC_MEDIA)):  # fmt: skip
        with Image.open(io.BytesIO(stored(output))) as picture:
            xmp = picture.info["xmp"]
        xmp = xmp.encode() if isinstance(xmp, str) else xmp
        assert f'Iptc4xmpExt:DigitalSourceType="{source_type}"'.encode() in xmp


def test_a_result_downloaded_from_replicate_is_signed_on_its_way_into_storage(creator, fake_replicate):
    job = job_create(user=creator, model=replicate_model(), prompt="A green comet", aspect_ratio="square")
    run_to_the_end(job.id)
    found = credentials(JobOutput.objects.select_related("job__model").get(job=job))
    assert found["state"] == "Trusted"
    assert made(found)["softwareAgent"] == {"name": "FLUX test", "identifier": "black-forest-labs/flux-schnell"}


def test_an_altered_result_no_longer_validates(creator):
    output = run(job_create(user=creator, model=local_model(), prompt="A lighthouse", aspect_ratio="square"))
    data = stored(output)
    # One byte of the picture's pixels changed, the manifest kept: the signed hash no longer matches.
    at = len(data) * 3 // 4
    altered = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    assert content_credentials_read(data, content_type="image/png", trust_anchors=DEV_ROOT)["state"] == "Trusted"
    found = content_credentials_read(altered, content_type="image/png", trust_anchors=DEV_ROOT)
    assert found is not None and found["state"] == "Invalid"


def test_the_operators_certificate_signs_when_configured_and_the_reader_trusts_only_its_root(creator, settings):
    chain, key, root = certificate_pair(organization="Dream Pixel Example Ltd")
    settings.C2PA_SIGNING_CERT, settings.C2PA_SIGNING_KEY = chain.decode(), key.decode()
    output = run(job_create(user=creator, model=local_model(), prompt="Signed by the site", aspect_ratio="square"))
    assert credentials(output, trust=root)["state"] == "Trusted"
    assert credentials(output, trust=DEV_ROOT)["state"] == "Valid"  # intact, but not from the development root


def test_the_persons_uploads_keep_no_metadata_and_no_credentials(client, creator):
    client.force_login(creator)
    client.post(reverse("create_edit"), {"model": local_edit_model().pk, "prompt": "Snow",
                                         "photo": photo("home.jpg"), "form_token": str(uuid.uuid4())})  # fmt: skip
    upload = Upload.objects.get()
    with default_storage.open(upload.file.name) as file:
        data = file.read()
    assert content_credentials_read(data, content_type="image/jpeg") is None
    with Image.open(io.BytesIO(data)) as picture:
        assert "xmp" not in picture.info and not picture.getexif()


def test_the_shared_page_says_the_result_is_made_by_ai_and_carries_credentials(client, creator):
    output = run(job_create(user=creator, model=local_model(), prompt="A paper boat", aspect_ratio="square"))
    token = job_share(job=output.job)
    page = client.get(reverse("shared", args=[token])).content.decode()
    assert "Made by AI (Preview renderer)" in page and "Content Credentials (C2PA)" in page
    assert "https://contentcredentials.org/verify" in page
    served = b"".join(client.get(reverse("shared_media", args=[token])).streaming_content)
    assert content_credentials_read(served, content_type="image/png", trust_anchors=DEV_ROOT)["state"] == "Trusted"
