"""Photos for upload tests, made on the spot."""

from __future__ import annotations

import functools
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from fakes.replicate import POISON, POISON_PIXEL


def photo_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (320, 240), colour=(200, 120, 60), poison: bool = False
) -> bytes:
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    if poison:
        # The app strips the text chunk; the pixel is what reaches the fake provider.
        image.putpixel((0, 0), POISON_PIXEL)
        info = PngImagePlugin.PngInfo()
        info.add_text("comment", POISON.decode())
        image.save(buffer, format="PNG", pnginfo=info)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def photo(name: str = "photo.jpg", fmt: str = "JPEG", **kwargs) -> SimpleUploadedFile:
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}.get(fmt, "")
    return SimpleUploadedFile(name, photo_bytes(fmt, **kwargs), content_type=content_type)


@functools.cache  # the same bytes every time, and encoding 40 megapixels is slow: made once
def pixel_bomb_webp(size: tuple[int, int] = (7_000, 5_700)) -> bytes:
    """40 megapixels of one colour, lossless: about 1.6 KB that cost seconds to decode and encode."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()
