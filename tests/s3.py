"""A real S3 endpoint on loopback (moto's server mode) for storage tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

from core.storages import default_storage_settings

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}


@contextmanager
def local_s3() -> Iterator[tuple[str, object]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        yield endpoint, client
    finally:
        server.stop()


def s3_storage_settings(endpoint: str, bucket: str, url_expire: int = 3600) -> dict:
    # The same builder production settings use, pointed at the local endpoint.
    return default_storage_settings(
        bucket=bucket, endpoint_url=endpoint, addressing_style="path", url_expire=url_expire, **CREDENTIALS
    )


def new_bucket(client) -> str:
    name = f"dreampixel-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name
