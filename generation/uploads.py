"""People's photos: judged by their headers on the web, decoded and cleaned by the worker.

Decoding costs per pixel, not per byte: a lossless WebP of 1.6 KB can hold 40 megapixels and
take seconds to decode and encode again. So the web request decodes nothing. It reads what the
file says of itself (format, size, frames), refuses what is too big, too dense for a photo,
animated or visibly cut short, and stores the file privately as it came. The job's worker
then decodes it and writes it again without metadata (generation/imagemeta.py), in a child
process with a time and memory limit, before anything is shown, shared or sent to a provider.
Until then the photo is served to nobody, its owner included.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from accounts.models import User
from generation import imagemeta
from generation.models import JobOutput, Upload, upload_upload_to

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: bigger than any phone photo, far from a decompression bomb
# Pixels per byte of file: a camera photo has fewer than 10, a JPEG of one flat colour about 60,
# a PNG of one flat colour about 300 (deflate's limit). Lossless WebP can pack thousands: such a
# file is no photo, and is refused before anything decodes it.
MAX_PIXELS_PER_BYTE = 500
# Pixels one request may hand the workers to decode: ten 24-megapixel photos.
MAX_PIXELS_PER_REQUEST = 250_000_000
ALLOWED_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


class UploadRejected(Exception):
    """A file we will not take, with a message for the person."""


@dataclass(frozen=True)
class ValidatedImage:
    """A photo as it came, with what its header says: not decoded yet."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _megabytes(size: int) -> str:
    # "10 MB" as the form's hint says it, "12.5 MB" when it is not a whole number.
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def _size_text(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else _megabytes(size)


def _looks_complete(data: bytes, image_format: str) -> bool:
    """Whether the file reaches its end, judged from its bytes alone (a cut-short upload is the
    common damage). A file damaged inside is found when the worker decodes it."""
    if image_format == "JPEG":  # the end-of-image marker after the last scan's start
        return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda") >= 0
    if image_format == "PNG":  # the IEND chunk after the last image data
        return data.rfind(b"IEND") > data.rfind(b"IDAT") >= 0
    # WebP: the RIFF header says how long the file is.
    return len(data) >= int.from_bytes(data[4:8], "little") + 8


def image_validate(file: UploadedFile) -> ValidatedImage:
    """Judge the file by its header, decoding no pixel: a renamed text file, another format, an
    animation, a decompression bomb, too many pixels (or too many for its size) and a file cut
    short are refused with a message, before anything is stored or charged."""
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
            # Image.open reads the header only; nothing below loads the pixels.
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise UploadRejected(f"{name} is a {image.format} file; use a JPEG, PNG or WebP photo.")
                if getattr(image, "n_frames", 1) > 1:
                    raise UploadRejected(f"{name} is an animation; choose a still photo (JPEG, PNG or WebP).")
                width, height = image.size
                image_format = image.format
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UploadRejected(f"{name} is too large to open safely; use a smaller photo.") from None
    except UnidentifiedImageError:
        raise UploadRejected(f"{name} is not a photo we can read; use a JPEG, PNG or WebP photo.") from None
    except (OSError, SyntaxError, ValueError):
        raise UploadRejected(f"{name} is damaged or incomplete; try exporting it again.") from None
    if width * height > MAX_PIXELS:
        raise UploadRejected(
            f"{name} is {width:,}×{height:,} pixels; photos can be up to {MAX_PIXELS // 1_000_000} megapixels."
        )
    if width * height > MAX_PIXELS_PER_BYTE * len(data):
        raise UploadRejected(
            f"{name} is {width * height / 1_000_000:.1f} megapixels in {_size_text(len(data))}: that is not a photo "
            "we can edit. Export it again as a JPEG."
        )
    if not _looks_complete(data, image_format):
        raise UploadRejected(f"{name} is damaged or incomplete; try exporting it again.")
    content_type, extension = ALLOWED_FORMATS[image_format]
    return ValidatedImage(data=data, content_type=content_type, extension=extension, width=width, height=height)


def images_within_budget(images: list[ValidatedImage]) -> None:
    """One request's photos together: at most MAX_PIXELS_PER_REQUEST for the workers to decode."""
    total = sum(image.pixels for image in images)
    if total > MAX_PIXELS_PER_REQUEST:
        raise UploadRejected(
            f"These photos are {total / 1_000_000:,.0f} megapixels together; one batch can be up to "
            f"{MAX_PIXELS_PER_REQUEST // 1_000_000} megapixels. Send fewer or smaller photos."
        )


def upload_store(*, user: User, image: ValidatedImage) -> Upload:
    """Save the photo as it came to private storage, to be cleaned by its job's worker (network
    I/O on S3: outside any transaction). It is served to nobody until then."""
    name = default_storage.save(upload_upload_to(None, f"photo.{image.extension}"), ContentFile(image.data))
    return Upload.objects.create(
        user=user,
        file=name,
        content_type=image.content_type,
        size=len(image.data),
        width=image.width,
        height=image.height,
        needs_cleaning=True,
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


def image_clean_isolated(data: bytes) -> tuple[bytes, int, int]:
    """generation.imagemeta in a child process: decoded and written again without metadata,
    stopped after UPLOAD_PROCESS_SECONDS (and its memory capped). UploadRejected when it cannot."""
    seconds = settings.UPLOAD_PROCESS_SECONDS
    command = [sys.executable, "-m", "generation.imagemeta", str(int(seconds) + 1), str(settings.UPLOAD_PROCESS_MEMORY)]
    try:
        done = subprocess.run(  # noqa: S603 (our own module, with numbers)
            command, input=data, capture_output=True, timeout=seconds, cwd=settings.BASE_DIR
        )
    except subprocess.TimeoutExpired:
        raise UploadRejected("Your photo took too long to process; try a smaller photo or a JPEG.") from None
    if done.returncode == imagemeta.EXIT_UNREADABLE:
        raise UploadRejected("Your photo is not a picture we can read; use a JPEG, PNG or WebP photo.")
    if done.returncode == imagemeta.EXIT_DAMAGED:
        raise UploadRejected("Your photo is damaged or incomplete; try exporting it again.")
    if done.returncode != 0:  # too large for its memory or CPU time (killed by a signal: negative)
        raise UploadRejected("Your photo is too large to process; try a smaller photo or a JPEG.")
    header, _, clean = done.stdout.partition(b"\n")
    width, height = (int(value) for value in header.split())
    return clean, width, height


def upload_clean(*, upload: Upload) -> Upload:
    """Decode the photo and keep it only re-encoded without metadata (the worker's step before
    a job is sent anywhere). Safe to run twice at once: the first to finish is kept. On
    UploadRejected the file as it came is deleted: nothing of it is kept or shown."""
    if not upload.needs_cleaning:
        return upload
    raw_name = upload.file.name
    try:
        with default_storage.open(raw_name) as file:
            data = file.read()
    except FileNotFoundError:
        upload.refresh_from_db()
        if not upload.needs_cleaning:  # another worker cleaned it meanwhile
            return upload
        raise UploadRejected("Your photo is no longer available; upload it again.") from None
    try:
        clean, width, height = image_clean_isolated(data)
    except UploadRejected:
        if Upload.objects.filter(pk=upload.pk, file=raw_name).update(file="", needs_cleaning=False):
            default_storage.delete(raw_name)
        raise
    name = default_storage.save(
        upload_upload_to(None, f"photo.{upload.file.name.rsplit('.', 1)[-1]}"), ContentFile(clean)
    )
    kept = Upload.objects.filter(pk=upload.pk, file=raw_name, needs_cleaning=True).update(
        file=name, size=len(clean), width=width, height=height, needs_cleaning=False
    )
    default_storage.delete(raw_name if kept else name)
    upload.refresh_from_db()
    return upload


def uploads_discard(uploads: list[Upload]) -> None:
    """Remove uploads no job was created for (e.g. the person was short of credits)."""
    orphans = Upload.objects.filter(pk__in=[upload.pk for upload in uploads], jobs__isnull=True)
    names = list(orphans.values_list("file", flat=True))
    orphans.delete()
    for name in names:
        default_storage.delete(name)
