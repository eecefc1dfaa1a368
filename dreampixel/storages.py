"""Where files live: local media/ in development, a private S3 (or compatible) bucket otherwise."""

from __future__ import annotations


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
