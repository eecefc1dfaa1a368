"""The local preview renderer: a deterministic picture drawn from the prompt and seed.

Same prompt, seed and shape, same picture. It lets the whole product run offline, and is
labelled in the UI as a preview, not AI.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import textwrap
import time
import uuid

from PIL import Image, ImageDraw, ImageFilter

from generation.providers.base import Prediction, PredictionRequest, ProviderError, decode_data_url

SIZES = {"2:3": (576, 864), "1:1": (704, 704), "3:2": (864, 576)}


def render_image(*, prompt: str, seed: int, ratio: str) -> bytes:
    width, height = SIZES.get(ratio, SIZES["1:1"])
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    rng = random.Random(digest)  # noqa: S311 (pictures, not secrets)
    palette = [tuple(rng.randrange(40, 255) for _ in range(3)) for _ in range(5)]

    # Painted small and scaled up: soft shapes for a few milliseconds of work.
    small_w, small_h = width // 8, height // 8
    top, bottom = palette[0], palette[1]
    gradient = Image.linear_gradient("L").resize((small_w, small_h))
    canvas = Image.composite(
        Image.new("RGB", (small_w, small_h), bottom), Image.new("RGB", (small_w, small_h), top), gradient
    )
    layer = Image.new("RGBA", (small_w, small_h))
    shapes = ImageDraw.Draw(layer)
    for _ in range(12):
        x, y = rng.randrange(small_w), rng.randrange(small_h)
        r = rng.randrange(max(2, min(small_w, small_h) // 10), max(3, min(small_w, small_h) // 3))
        shapes.ellipse([x - r, y - r, x + r, y + r], fill=(*palette[rng.randrange(2, 5)], rng.randrange(90, 200)))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), layer.filter(ImageFilter.GaussianBlur(2)))
    image = canvas.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)

    draw = ImageDraw.Draw(image)
    lines = textwrap.wrap(prompt, width=max(20, width // 14))[:4]
    draw.rectangle([0, height - 28 - 16 * len(lines), width, height], fill=(0, 0, 0))
    for n, line in enumerate(lines):
        draw.text((14, height - 20 - 16 * (len(lines) - n)), line, fill=(255, 255, 255))
    draw.text((14, height - 20), f"Preview renderer · seed {seed}", fill=(200, 200, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class LocalProvider:
    name = "local"

    def __init__(self, *, delay: float = 0.0):
        self.delay = delay

    def create(self, request: PredictionRequest) -> Prediction:
        prompt = str(request.input.get("prompt", ""))
        if "[fail]" in prompt:  # lets people try the failure and refund path offline
            return Prediction(
                id=f"local-{uuid.uuid4().hex}", status="failed", error="The preview renderer was asked to fail."
            )
        started = time.monotonic()
        if self.delay:
            time.sleep(self.delay)
        png = render_image(
            prompt=prompt, seed=int(request.input.get("seed") or 0), ratio=str(request.input.get("aspect_ratio", "1:1"))
        )
        return Prediction(
            id=f"local-{uuid.uuid4().hex}",
            status="succeeded",
            outputs=["data:image/png;base64," + base64.b64encode(png).decode()],
            metrics={"predict_time": round(time.monotonic() - started, 3)},
        )

    def get(self, prediction_id: str) -> Prediction:
        # Local renders finish inside create(); one that was interrupted cannot be resumed.
        return Prediction(id=prediction_id, status="failed", error="The preview render was interrupted.")

    def cancel(self, prediction_id: str) -> None:
        return None

    def fetch_output(self, url: str) -> bytes:
        if not url.startswith("data:"):
            raise ProviderError(f"The preview renderer has no output at {url!r}.")
        return decode_data_url(url)
