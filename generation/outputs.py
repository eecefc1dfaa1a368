"""Copying provider outputs into our own storage, with a thumbnail and what we know of the file."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from generation.imagemeta import image_without_metadata
from generation.models import output_upload_to, thumbnail_upload_to

THUMBNAIL_SIZE = (512, 512)
IMAGE_TYPES = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}


class UnreadableOutput(Exception):
    pass


@dataclass
class StoredOutput:
    file_name: str
    thumbnail_name: str
    content_type: str
    size: int
    width: int | None
    height: int | None


def _video_type(data: bytes) -> tuple[str, str] | None:
    if data[4:8] == b"ftyp":
        return "video/mp4", "mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm", "webm"
    return None


def _thumbnail(image: Image.Image) -> bytes:
    thumb = (ImageOps.exif_transpose(image) or image).convert("RGB")
    thumb.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    thumb.save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()


def _first_frame(data: bytes) -> Image.Image | None:
    """The poster frame of a video, decoded with PyAV (FFmpeg); None if it cannot be read."""
    try:
        # mode="r" (the default) spelled out: PyAV's types infer reading only from a path.
        with av.open(io.BytesIO(data), mode="r") as container:
            for frame in container.decode(video=0):
                return frame.to_image()
    except (av.error.FFmpegError, StopIteration, IndexError):
        return None
    return None


def store_output(data: bytes) -> StoredOutput:
    """Save one output file (and its thumbnail) to the default storage. Network I/O on S3:
    call it outside any database transaction."""
    if not data:
        raise UnreadableOutput("The output file is empty.")
    video = _video_type(data)
    width = height = None
    thumbnail = b""
    if video:
        content_type, extension = video
        frame = _first_frame(data)
        if frame is None:
            raise UnreadableOutput("The video could not be decoded.")
        width, height = frame.size
        thumbnail = _thumbnail(frame)
    else:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                if image.format not in IMAGE_TYPES:
                    raise UnreadableOutput(f"The output is a {image.format} file, which we do not keep.")
                content_type, extension = IMAGE_TYPES[image.format]
                thumbnail = _thumbnail(image)
            # Kept without the metadata a provider wrote (its tools, the source photo's EXIF).
            data, width, height = image_without_metadata(data)
        except (UnidentifiedImageError, OSError) as error:
            raise UnreadableOutput("The output is not an image or video we can read.") from error

    file_name = default_storage.save(output_upload_to(None, f"output.{extension}"), ContentFile(data))
    thumbnail_name = ""
    if thumbnail:
        thumbnail_name = default_storage.save(thumbnail_upload_to(None, "thumb.webp"), ContentFile(thumbnail))
    return StoredOutput(
        file_name=file_name,
        thumbnail_name=thumbnail_name,
        content_type=content_type,
        size=len(data),
        width=width,
        height=height,
    )


def delete_files(names: list[str]) -> None:
    for name in names:
        if name:
            default_storage.delete(name)
