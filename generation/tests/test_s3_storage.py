"""Outputs in S3 through django-storages, against a real local S3 server (moto server mode)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from django.urls import reverse
from storages.backends.s3 import S3Storage

from accounts.tests.factories import UserFactory
from generation.models import Job
from generation.services import job_create, job_run
from generation.tests.factories import local_model
from generation.tests.photos import photo
from generation.uploads import image_validate, upload_store, uploads_discard
from tests.s3 import OwnershipEnforcedBucket, local_s3, new_bucket, s3_storage_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3(settings):
    with local_s3() as (endpoint, client):
        bucket = new_bucket(client)
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage_settings(endpoint, bucket)}
        yield endpoint, client, bucket


def test_outputs_go_to_the_bucket_and_downloads_redirect_to_a_short_lived_signed_url(client, creator, s3, settings):
    endpoint, s3_client, bucket = s3
    job = job_create(user=creator, model=local_model(), prompt="Stored in S3", aspect_ratio="square")
    job_run(job_id=job.id)
    output = job.outputs.get()
    keys = {item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {output.file.name, output.thumbnail.name} <= keys

    client.force_login(creator)
    response = client.get(reverse("output_file", args=[output.id]), {"download": "1"})
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == endpoint
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == [str(settings.FILE_URL_EXPIRE)]
    assert "X-Amz-Signature" in query
    assert "attachment" in query["response-content-disposition"][0]
    assert "private" in response["Cache-Control"]

    fetched = httpx.get(response["Location"])
    assert fetched.status_code == 200
    assert fetched.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert fetched.content == s3_client.get_object(Bucket=bucket, Key=output.file.name)["Body"].read()


def test_another_users_file_never_gets_a_signed_url(client, creator, s3):
    job = job_create(user=creator, model=local_model(), prompt="Mine", aspect_ratio="square")
    job_run(job_id=job.id)
    client.force_login(UserFactory())
    assert client.get(reverse("output_file", args=[job.outputs.get().id])).status_code == 404


def test_the_deep_health_check_checks_the_bucket(client, s3, settings):
    endpoint, _, _ = s3
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the test client's address
    assert client.get("/readyz/deep").json()["checks"]["storage"]["ok"]
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage_settings(endpoint, "no-such-bucket")}
    body = client.get("/readyz/deep").json()
    assert body["failing"] == ["storage"]
    assert client.get("/readyz").status_code == 200  # a lost bucket does not take the node out of rotation


def test_no_acl_is_sent_so_a_bucket_with_ownership_enforced_takes_every_write(client, creator, settings):
    # Real S3 refuses any ACL on a bucket whose owner enforces ownership (the default for new
    # buckets); moto does not, so a front that refuses them as S3 does stands before it.
    with local_s3() as (endpoint, s3_client), OwnershipEnforcedBucket(endpoint) as bucket_front:
        bucket = new_bucket(s3_client)
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage_settings(bucket_front.url, bucket)}
        job = job_create(user=creator, model=local_model(), prompt="Owned by the bucket", aspect_ratio="square")
        job_run(job_id=job.id)
        upload = upload_store(user=creator, image=image_validate(photo()))
        assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
        keys = {item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
        output = job.outputs.get()
        assert {output.file.name, output.thumbnail.name, upload.file.name} <= keys
        uploads_discard([upload])
        assert [method for method, _ in bucket_front.requests].count("PUT") >= 3
        assert bucket_front.refused == []

        # The front refuses as S3 does: the same storage told to send an ACL fails.
        with_acl = S3Storage(**{**s3_storage_settings(bucket_front.url, bucket)["OPTIONS"], "default_acl": "private"})
        with pytest.raises(ClientError, match="AccessControlListNotSupported"):
            with_acl.save("uploads/acl-test.txt", ContentFile(b"x"))
