"""People's photos: validated by decoding them, then stored privately."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from accounts.models import User
from generation.imagemeta import image_without_metadata
from generation.models import JobOutput, Upload, upload_upload_to

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: bigger than any phone photo, far from a decompression bomb
ALLOWED_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


class UploadRejected(Exception):
    """A file we will not take, with a message for the person."""


@dataclass(frozen=True)
class ValidatedImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _megabytes(size: int) -> str:
    # "10 MB" as the form's hint says it, "12.5 MB" when it is not a whole number.
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def image_validate(file: UploadedFile) -> ValidatedImage:
    """Decode the file for real: a renamed text file, a truncated photo, a decompression bomb,
    an oversized file or another format is refused with a message, before anything is stored."""
    name = getattr(file, "name", "") or "This file"
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        raise UploadRejected(f"{name} is {_megabytes(file.size)}; photos can be up to {_megabytes(MAX_UPLOAD_BYTES)}.")
    data = file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(f"{name} is over {_megabytes(MAX_UPLOAD_BYTES)}; use a smaller photo.")
    if not data:
        raise UploadRejected(f"{name} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise UploadRejected(f"{name} is a {image.format} file; use a JPEG, PNG or WebP photo.")
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UploadRejected(
                        f"{name} is {width:,}×{height:,} pixels; photos can be up to {MAX_PIXELS // 1_000_000} megapixels."
                    )
                image.load()  # decodes every pixel: a truncated file fails here
                content_type, extension = ALLOWED_FORMATS[image.format]
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadRejected(f"{name} is too large to open safely; use a smaller photo.") from None
    except UnidentifiedImageError:
        raise UploadRejected(f"{name} is not a photo we can read; use a JPEG, PNG or WebP photo.") from None
    except (OSError, SyntaxError, ValueError):
        raise UploadRejected(f"{name} is damaged or incomplete; try exporting it again.") from None
    # What is stored, shown and sent to the provider is the picture alone: no GPS, no camera.
    data, width, height = image_without_metadata(data)
    return ValidatedImage(data=data, content_type=content_type, extension=extension, width=width, height=height)


def upload_store(*, user: User, image: ValidatedImage) -> Upload:
    """Save the photo to private storage (network I/O on S3: outside any transaction)."""
    name = default_storage.save(upload_upload_to(None, f"photo.{image.extension}"), ContentFile(image.data))
    return Upload.objects.create(
        user=user,
        file=name,
        content_type=image.content_type,
        size=len(image.data),
        width=image.width,
        height=image.height,
    )


def upload_from_output(*, user: User, output: JobOutput) -> Upload:
    """A private copy of one of the person's results, as the input of a job made from it (an
    upscale, an animation, an edit): the job keeps its input even if that result is deleted.
    The copy keeps the result's Content Credentials, so the new result names it as its source.
    Storage I/O: outside any transaction."""
    with default_storage.open(output.file.name) as file:
        data = file.read()
    name = default_storage.save(upload_upload_to(None, f"result.{output.extension}"), ContentFile(data))
    return Upload.objects.create(
        user=user,
        file=name,
        content_type=output.content_type,
        size=len(data),
        width=output.width or 0,
        height=output.height or 0,
    )


def uploads_discard(uploads: list[Upload]) -> None:
    """Remove uploads no job was created for (e.g. the person was short of credits)."""
    orphans = Upload.objects.filter(pk__in=[upload.pk for upload in uploads], jobs__isnull=True)
    names = list(orphans.values_list("file", flat=True))
    orphans.delete()
    for name in names:
        default_storage.delete(name)
