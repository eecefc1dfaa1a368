"""Copying provider outputs into our own storage, with a thumbnail and what we know of the file,
each signed with its Content Credentials (generation/provenance.py) on the way in."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from generation.imagemeta import opened_image_without_metadata
from generation.models import output_upload_to, thumbnail_upload_to
from generation.provenance import Provenance, SigningFailed, content_credentials_sign, xmp_packet

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


def _as_mp4(data: bytes) -> bytes:
    """A video in another container (WebM) re-encoded as H.264 MP4, which Content Credentials
    can be embedded in and every browser plays."""
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        with av.open(io.BytesIO(data), mode="r") as source, av.open(file.name, mode="w", format="mp4") as target:
            stream_in = source.streams.video[0]
            rate = stream_in.average_rate or 24
            stream = target.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "23"})
            stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
            for frame in source.decode(stream_in):
                for packet in stream.encode(frame.reformat(format="yuv420p")):
                    target.mux(packet)
            for packet in stream.encode():
                target.mux(packet)
        return Path(file.name).read_bytes()


def store_output(data: bytes, *, provenance: Provenance) -> StoredOutput:
    """Save one output file (and its thumbnail) to the default storage, signed as made by AI.
    Network I/O on S3: call it outside any database transaction."""
    if not data:
        raise UnreadableOutput("The output file is empty.")
    video = _video_type(data)
    width = height = None
    thumbnail = b""
    if video:
        frame = _first_frame(data)
        if frame is None:
            raise UnreadableOutput("The video could not be decoded.")
        if video[0] != "video/mp4":
            try:
                data = _as_mp4(data)
            except (av.error.FFmpegError, IndexError) as error:
                raise UnreadableOutput("The video could not be converted to MP4.") from error
        content_type, extension = "video/mp4", "mp4"
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
                # Kept without the metadata a provider wrote (its tools, the source photo's EXIF),
                # and with ours: the IPTC marker that the picture was made by AI.
                xmp = xmp_packet(provenance.digital_source_type)
                data, width, height = opened_image_without_metadata(image, data, xmp=xmp)
        except (UnidentifiedImageError, OSError) as error:
            raise UnreadableOutput("The output is not an image or video we can read.") from error
    try:
        data = content_credentials_sign(data, content_type=content_type, provenance=provenance)
    except SigningFailed as error:
        raise UnreadableOutput(str(error)) from error

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
