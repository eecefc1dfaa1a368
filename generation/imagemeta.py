"""Photos and pictures leave without their metadata: no GPS position, camera serial, XMP or IPTC.

Pillow re-encodes the pixels and writes only what we pass it. The EXIF orientation is applied
to the pixels first, so a portrait photo stays upright once its EXIF is gone. The colour
profile (ICC) is kept: it says nothing about the person and changes how the colours look.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, PngImagePlugin

# How each format is written again; JPEG at a quality that does not visibly change a photo.
SAVE_OPTIONS = {
    "JPEG": {"quality": 95},
    "PNG": {},
    "WEBP": {"quality": 95},
}


def image_without_metadata(data: bytes, *, xmp: bytes = b"") -> tuple[bytes, int, int]:
    """The image re-encoded in its own format without metadata, and its (upright) size.
    Formats we do not re-encode (GIF, animations) come back as they are. `xmp`, when given, is
    the one packet written back: ours (a result's digital source type), never the file's."""
    with Image.open(io.BytesIO(data)) as image:
        image_format = image.format
        if image_format not in SAVE_OPTIONS or getattr(image, "n_frames", 1) > 1:
            return data, image.width, image.height
        options: dict[str, object] = dict(SAVE_OPTIONS[image_format])
        if icc_profile := image.info.get("icc_profile"):
            options["icc_profile"] = icc_profile
        if image.mode == "P" and "transparency" in image.info:
            options["transparency"] = image.info["transparency"]
        if xmp and image_format == "PNG":
            text = PngImagePlugin.PngInfo()
            text.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=False)
            options["pnginfo"] = text
        elif xmp:
            options["xmp"] = xmp
        upright = ImageOps.exif_transpose(image) or image
        # A fresh image holds only pixels (and a palette): nothing of the original's info,
        # EXIF, XMP or comments can be written back by the encoder.
        clean = Image.new(upright.mode, upright.size)
        clean.paste(upright)
        if upright.mode == "P":
            clean.putpalette(upright.getpalette() or [])
    buffer = io.BytesIO()
    clean.save(buffer, format=image_format, **options)
    return buffer.getvalue(), clean.width, clean.height
