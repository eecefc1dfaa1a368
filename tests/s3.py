"""A real S3 endpoint on loopback (moto's server mode) for storage tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
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


# Headers and query parameters that carry an ACL in S3's API.
ACL_HEADERS = ("x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-full-control",
               "x-amz-grant-read-acp", "x-amz-grant-write-acp")  # fmt: skip
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class OwnershipEnforcedBucket:
    """What real S3 does with a bucket whose object ownership is "bucket owner enforced" (the
    default for new buckets): any request carrying an ACL is refused with 400
    AccessControlListNotSupported. moto accepts such requests, so this loopback front refuses
    them before they reach it and forwards the rest; `requests` and `refused` record what came."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
                front.requests.append((self.command, self.path))
                if "acl" in query or any(self.headers.get(name) for name in ACL_HEADERS):
                    front.refused.append((self.command, self.path))
                    error = (
                        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessControlListNotSupported</Code>'
                        b"<Message>The bucket does not allow ACLs</Message></Error>"
                    )
                    self._answer(400, {"Content-Type": "application/xml"}, error)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                answer = httpx.request(self.command, front.upstream + self.path, headers=headers, content=body)
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                self._answer(answer.status_code, kept, b"" if self.command == "HEAD" else answer.content)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> OwnershipEnforcedBucket:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
