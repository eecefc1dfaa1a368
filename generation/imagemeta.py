"""Photos and pictures leave without their metadata: no GPS position, camera serial, XMP or IPTC.

Pillow re-encodes the pixels and writes only what we pass it. The EXIF orientation is applied
to the pixels first, so a portrait photo stays upright once its EXIF is gone. The colour
profile (ICC) is kept: it says nothing about the person and changes how the colours look. An
animation (WebP, APNG) has every frame re-encoded the same way, with its timing and loop.

Run as a program (`python -m generation.imagemeta`) it does the same to the bytes on its stdin,
under limits of CPU time and memory it sets on itself: generation/uploads.py runs people's
photos through it in a child process with a time limit, so that a photo that costs more than
it should is stopped there, never in the process that asked.
"""

from __future__ import annotations

import io
import resource
import sys

from PIL import Image, ImageOps, ImageSequence, PngImagePlugin, UnidentifiedImageError

# How each format is written again; JPEG at a quality that does not visibly change a photo.
SAVE_OPTIONS = {
    "JPEG": {"quality": 95},
    "PNG": {},
    "WEBP": {"quality": 95},
}
# Formats whose animations are re-encoded frame by frame (GIF is kept as made: docs/security.md).
ANIMATED = {"PNG", "WEBP"}


def _clean_copy(image: Image.Image) -> Image.Image:
    """The pixels (and palette) alone, upright: nothing of the original's info, EXIF, XMP or
    comments can be written back by the encoder."""
    upright = ImageOps.exif_transpose(image) or image
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    if upright.mode == "P":
        clean.putpalette(upright.getpalette() or [])
    return clean


def _animation_without_metadata(image: Image.Image, image_format: str) -> tuple[bytes, int, int]:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        # RGBA: frames of an animation may each carry their own palette and transparency.
        pixels = frame.convert("RGBA")  # loads the frame, which is when its duration is read
        durations.append(int(frame.info.get("duration", 100)))
        frames.append(_clean_copy(pixels))
    options = {**SAVE_OPTIONS[image_format], "save_all": True, "append_images": frames[1:], "duration": durations}
    options["loop"] = int(image.info.get("loop", 0))
    if icc_profile := image.info.get("icc_profile"):
        options["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    frames[0].save(buffer, format=image_format, **options)
    return buffer.getvalue(), frames[0].width, frames[0].height


def image_without_metadata(data: bytes, *, xmp: bytes = b"") -> tuple[bytes, int, int]:
    """The image re-encoded in its own format without metadata, and its (upright) size.
    Decodes every pixel: a damaged file raises OSError. Formats we do not re-encode (GIF) come
    back as they are. `xmp`, when given, is the one packet written back to a still image: ours
    (a result's digital source type), never the file's."""
    with Image.open(io.BytesIO(data)) as image:
        return opened_image_without_metadata(image, data, xmp=xmp)


def opened_image_without_metadata(image: Image.Image, data: bytes, *, xmp: bytes = b"") -> tuple[bytes, int, int]:
    """image_without_metadata for an image already opened from `data` (and perhaps decoded), so
    that a caller who also needs its pixels (a thumbnail) decodes them once."""
    image_format = image.format or ""
    if image_format not in SAVE_OPTIONS:
        return data, image.width, image.height
    if getattr(image, "n_frames", 1) > 1:
        if image_format not in ANIMATED:
            return data, image.width, image.height
        return _animation_without_metadata(image, image_format)
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
    clean = _clean_copy(image)
    buffer = io.BytesIO()
    clean.save(buffer, format=image_format, **options)
    return buffer.getvalue(), clean.width, clean.height


# --- As a child process (generation/uploads.py) ------------------------------------------------

# Exit codes the parent turns into a message for the person.
EXIT_UNREADABLE = 3
EXIT_DAMAGED = 4
EXIT_TOO_LARGE = 5


def main(cpu_seconds: int, memory_bytes: int) -> int:
    # The parent also stops us at its wall-clock limit; these hold if it could not.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    data = sys.stdin.buffer.read()
    try:
        clean, width, height = image_without_metadata(data)
    except UnidentifiedImageError:
        return EXIT_UNREADABLE
    except (Image.DecompressionBombError, MemoryError):
        return EXIT_TOO_LARGE
    except (OSError, SyntaxError, ValueError):
        return EXIT_DAMAGED
    sys.stdout.buffer.write(f"{width} {height}\n".encode() + clean)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
