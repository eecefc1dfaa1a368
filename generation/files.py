"""Serving a stored file once the caller has checked who may see it (the person's pages, and
staff in the admin)."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseBase
from django.shortcuts import redirect

from core.storages import storage_is_s3


def stored_file_response(name: str, *, filename: str, download: bool) -> HttpResponseBase:
    """A redirect to a short-lived signed URL on S3, the file itself from local storage."""
    if not name:
        raise Http404
    if storage_is_s3(default_storage):
        parameters = {"ResponseContentDisposition": f'attachment; filename="{filename}"'} if download else None
        response: HttpResponseBase = redirect(
            default_storage.url(name, parameters=parameters, expire=settings.FILE_URL_EXPIRE)
        )
        # Shorter than the signed URL's own life, so a cached redirect never points at an expired one.
        response["Cache-Control"] = f"private, max-age={settings.FILE_URL_EXPIRE // 2}"
        return response
    response = FileResponse(default_storage.open(name), as_attachment=download, filename=filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response
