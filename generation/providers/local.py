"""The local preview renderer: deterministic pictures, photo restyles, upscales and short clips.

Same prompt, seed and shape, same result. It lets the whole product run offline, and is
labelled in the UI as a preview, not AI. Markers in the prompt let people try the failure
paths offline: "[fail]" fails the job, "[fail-one]" holds back the last of several results
(what a model's safety filter does).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import random
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import av
import httpx
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from generation.providers.base import Prediction, PredictionRequest, ProviderError, decode_data_url

SIZES = {
    "2:3": (576, 864),
    "1:1": (704, 704),
    "3:2": (864, 576),
    "16:9": (896, 504),
    "9:16": (504, 896),
    "4:5": (640, 800),
    "3:4": (600, 800),
}
VIDEO_SIZES = {"9:16": (288, 512), "1:1": (384, 384), "16:9": (512, 288), "3:4": (336, 448)}
VIDEO_FPS = 12


def _rng(prompt: str, seed: int) -> random.Random:
    return random.Random(hashlib.sha256(f"{seed}:{prompt}".encode()).digest())  # noqa: S311 (pictures)


def _palette(rng: random.Random) -> list[tuple[int, int, int]]:
    return [(rng.randrange(40, 255), rng.randrange(40, 255), rng.randrange(40, 255)) for _ in range(5)]


def _painting(rng: random.Random, size: tuple[int, int], palette, shift: float = 0.0) -> Image.Image:
    # Painted small and scaled up: soft shapes for a few milliseconds of work. `shift` drifts
    # the shapes, which is all a preview clip needs to move.
    width, height = size
    small_w, small_h = max(8, width // 8), max(8, height // 8)
    gradient = Image.linear_gradient("L").resize((small_w, small_h))
    canvas = Image.composite(
        Image.new("RGB", (small_w, small_h), palette[1]), Image.new("RGB", (small_w, small_h), palette[0]), gradient
    )
    layer = Image.new("RGBA", (small_w, small_h))
    shapes = ImageDraw.Draw(layer)
    for n in range(12):
        x, y = rng.randrange(small_w), rng.randrange(small_h)
        x += int(shift * (n % 3 - 1) * small_w / 6)
        y += int(shift * ((n + 1) % 3 - 1) * small_h / 6)
        r = rng.randrange(max(2, min(small_w, small_h) // 10), max(3, min(small_w, small_h) // 3))
        shapes.ellipse([x - r, y - r, x + r, y + r], fill=(*palette[rng.randrange(2, 5)], rng.randrange(90, 200)))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), layer.filter(ImageFilter.GaussianBlur(2)))
    return canvas.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


def _caption(image: Image.Image, prompt: str, label: str) -> None:
    width, height = image.size
    draw = ImageDraw.Draw(image)
    lines = textwrap.wrap(prompt, width=max(20, width // 14))[:4]
    draw.rectangle([0, height - 28 - 16 * len(lines), width, height], fill=(0, 0, 0))
    for n, line in enumerate(lines):
        draw.text((14, height - 20 - 16 * (len(lines) - n)), line, fill=(255, 255, 255))
    draw.text((14, height - 20), label, fill=(200, 200, 200))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _without(negative_prompt: str) -> str:
    # The preview cannot leave things out; it says what it was asked to leave out.
    return f" · without: {negative_prompt[:60]}" if negative_prompt else ""


def picture_size(ratio: str, megapixels: object = None) -> tuple[int, int]:
    """The preview's size for `ratio`; with `megapixels` (the input Flux models take, "1" or
    "0.25" there), the same shape scaled to about that many pixels, sides a multiple of 8."""
    width, height = SIZES.get(ratio, SIZES["1:1"])
    try:
        wanted = float(str(megapixels))
    except ValueError:
        return width, height
    if not 0.01 <= wanted <= 4:
        return width, height
    scale = math.sqrt(wanted * 1_000_000 / (width * height))
    return round(width * scale / 8) * 8, round(height * scale / 8) * 8


def render_image(*, prompt: str, seed: int, ratio: str, negative_prompt: str = "", megapixels: object = None) -> bytes:
    rng = _rng(prompt, seed)
    image = _painting(rng, picture_size(ratio, megapixels), _palette(rng))
    _caption(image, prompt, f"Preview renderer · seed {seed}{_without(negative_prompt)}")
    return _png(image)


def render_edit(*, photo: bytes, prompt: str, seed: int, negative_prompt: str = "") -> bytes:
    """Restyle the photo: posterize, tint it with the prompt's colours, caption it."""
    rng = _rng(prompt, seed)
    palette = _palette(rng)
    with Image.open(io.BytesIO(photo)) as source:
        image = ImageOps.exif_transpose(source).convert("RGB")
    image.thumbnail((1024, 1024))
    toned = ImageOps.colorize(ImageOps.grayscale(ImageOps.posterize(image, 3)), black=palette[0], white=palette[2])
    image = Image.blend(image, toned, 0.65)
    _caption(image, prompt, f"Preview editor · seed {seed}{_without(negative_prompt)}")
    return _png(image)


def render_upscale(*, photo: bytes, factor: int) -> bytes:
    """The picture `factor` times larger, by resizing (Lanczos): what an upscaler's result
    looks like, without the new detail a model would invent."""
    with Image.open(io.BytesIO(photo)) as source:
        image = ImageOps.exif_transpose(source).convert("RGB")
    image = image.resize((image.width * factor, image.height * factor), Image.Resampling.LANCZOS)
    return _png(image)


def render_animation(*, photo: bytes, prompt: str, seed: int, seconds: int) -> bytes:
    """A real H.264 MP4 of the photo: a slow push-in (a Ken Burns move) for `seconds` seconds."""
    with Image.open(io.BytesIO(photo)) as source:
        image = ImageOps.exif_transpose(source).convert("RGB")
    image.thumbnail((512, 512))
    # Even sides: H.264 in yuv420p needs them.
    width, height = image.width // 2 * 2, image.height // 2 * 2
    image = image.crop((0, 0, width, height))
    frames = VIDEO_FPS * seconds
    drift = _rng(prompt, seed).choice([(-1, -1), (1, -1), (-1, 1), (1, 1)])

    def frame(index: int) -> Image.Image:
        zoom = 1 + 0.12 * index / frames  # up to 12% closer by the end
        crop_w, crop_h = width / zoom, height / zoom
        shift_x = (width - crop_w) / 2 * (1 + drift[0] * index / frames / 2)
        shift_y = (height - crop_h) / 2 * (1 + drift[1] * index / frames / 2)
        box = (shift_x, shift_y, shift_x + crop_w, shift_y + crop_h)
        still = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
        _caption(still, prompt, f"Preview animation · seed {seed}")
        return still

    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        _encode_frames(file.name, (width, height), (frame(index) for index in range(frames)))
        return Path(file.name).read_bytes()


def render_video(*, prompt: str, seed: int, ratio: str, seconds: int) -> bytes:
    """A real H.264 MP4: the painting drifting for `seconds` seconds."""
    width, height = VIDEO_SIZES.get(ratio, VIDEO_SIZES["1:1"])
    palette = _palette(_rng(prompt, seed))
    # A real file, not memory: faststart rewrites the file to put the index first, so a
    # browser can start playing before it has all of it.
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        _encode(file.name, prompt=prompt, seed=seed, size=(width, height), palette=palette, seconds=seconds)
        return Path(file.name).read_bytes()


def _encode(path: str, *, prompt: str, seed: int, size: tuple[int, int], palette, seconds: int) -> None:
    frames = VIDEO_FPS * seconds

    def frame(index: int) -> Image.Image:
        still = _painting(_rng(prompt, seed), size, palette, shift=index / frames)
        _caption(still, prompt, f"Preview video · seed {seed}")
        return still

    _encode_frames(path, size, (frame(index) for index in range(frames)))


def _encode_frames(path: str, size: tuple[int, int], frames: Iterable[Image.Image]) -> None:
    width, height = size
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS, options={"preset": "ultrafast", "crf": "30"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for still in frames:
            for packet in stream.encode(av.VideoFrame.from_image(still)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _read_photo(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if hasattr(value, "read"):
        return value.read()
    if isinstance(value, str) and value.startswith("data:"):
        return decode_data_url(value)
    if isinstance(value, str):  # a signed storage URL
        response = httpx.get(value, timeout=30)
        response.raise_for_status()
        return response.content
    raise ProviderError("The preview editor got no photo.")


def _data_url(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64," + base64.b64encode(data).decode()


class LocalProvider:
    name = "local"
    draws_in_create = True

    def __init__(self, *, delay: float = 0.0):
        self.delay = delay

    # The preview renderer stays synchronous: it draws in a few milliseconds on the worker
    # itself, there is nothing remote to wait for or to poll, and nothing is paid, so an
    # interrupted render is simply drawn again.
    def token_for_new(self) -> str:
        return ""

    def create(self, request: PredictionRequest, *, token: str = "") -> Prediction:
        prediction_id = f"local-{uuid.uuid4().hex}"
        spec = request.input
        prompt = str(spec.get("prompt", ""))
        if "[fail]" in prompt:  # lets people try the failure and refund path offline
            return Prediction(id=prediction_id, status="failed", error="The preview renderer was asked to fail.")
        started = time.monotonic()
        if self.delay:
            time.sleep(self.delay)
        seed = int(spec.get("seed") or 0)
        ratio = str(spec.get("aspect_ratio", "1:1"))
        count = max(1, min(int(spec.get("num_outputs") or 1), 4))
        photo_value = spec.get("input_image", spec.get("image"))
        photo = _read_photo(photo_value) if photo_value is not None else None
        outputs: list[str] = []
        for index in range(count):
            # Each result of one job is drawn with its own seed, as a model's would differ.
            outputs.append(self._draw(spec, prompt=prompt, seed=seed + index, ratio=ratio, photo=photo))
        if "[fail-one]" in prompt and count > 1:
            outputs.pop()
        return Prediction(
            id=prediction_id,
            status="succeeded",
            outputs=outputs,
            metrics={"predict_time": round(time.monotonic() - started, 3)},
            completed_at=timezone.now(),
        )

    @staticmethod
    def _draw(spec: dict, *, prompt: str, seed: int, ratio: str, photo: bytes | None) -> str:
        if photo is not None and spec.get("scale"):
            return _data_url("image/png", render_upscale(photo=photo, factor=int(spec["scale"])))
        if photo is not None and spec.get("duration"):
            video = render_animation(photo=photo, prompt=prompt, seed=seed, seconds=int(spec["duration"]))
            return _data_url("video/mp4", video)
        negative = str(spec.get("negative_prompt", ""))
        if photo is not None:
            return _data_url("image/png", render_edit(photo=photo, prompt=prompt, seed=seed, negative_prompt=negative))
        if spec.get("duration"):
            video = render_video(prompt=prompt, seed=seed, ratio=ratio, seconds=int(spec["duration"]))
            return _data_url("video/mp4", video)
        picture = render_image(
            prompt=prompt, seed=seed, ratio=ratio, negative_prompt=negative, megapixels=spec.get("megapixels")
        )
        return _data_url("image/png", picture)

    def get(self, prediction_id: str, *, token: str = "") -> Prediction:
        # Local renders finish inside create(); one that was interrupted cannot be resumed.
        return Prediction(id=prediction_id, status="failed", error="The preview render was interrupted.")

    def cancel(self, prediction_id: str, *, token: str = "") -> None:
        return None

    def find(self, request: PredictionRequest, *, since, token: str = "") -> Prediction | None:
        return None  # nothing runs outside create(), so nothing can be orphaned

    def recent(self, *, since, token: str = "", max_pages: int = 3) -> tuple[dict[str, Prediction], bool]:
        return {}, True

    def fetch_output(self, url: str) -> bytes:
        if not url.startswith("data:"):
            raise ProviderError(f"The preview renderer has no output at {url!r}.")
        return decode_data_url(url)
