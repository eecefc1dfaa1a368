"""Where files live: local media/ in development, a private S3 (or compatible) bucket otherwise."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypeGuard

from django.core.files.storage import Storage

if TYPE_CHECKING:
    from storages.backends.s3 import S3Storage


def default_storage_settings(
    *,
    bucket: str,
    region: str = "",
    endpoint_url: str = "",
    access_key: str = "",
    secret_key: str = "",
    custom_domain: str = "",
    addressing_style: str = "",
    url_expire: int = 3600,
) -> dict:
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    # Private bucket: every file is reached through a short-lived signed URL, never a public one.
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "region_name": region or None,
            "endpoint_url": endpoint_url or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "custom_domain": custom_domain or None,
            "addressing_style": addressing_style or None,
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": url_expire,
            "file_overwrite": False,
        },
    }


def storage_is_s3(storage: Storage) -> TypeGuard[S3Storage]:
    """Whether files live in a bucket (served by signed URLs) rather than on a local disk.

    Called as `storage_is_s3(default_storage)`, so the S3-only calls after it type-check."""
    # Imported here: settings import this module, and boto3 is slow to load.
    from storages.backends.s3 import S3Storage  # noqa: PLC0415

    return isinstance(storage, S3Storage)


def file_extension(name: str, *, default: str = "bin") -> str:
    """A stored file's extension without the dot, lower case: "outputs/2026/01/ab.PNG" -> "png"."""
    suffix = PurePosixPath(name).suffix
    return suffix[1:].lower() if suffix else default
