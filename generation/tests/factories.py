from __future__ import annotations

import factory

from generation.models import AIModel

RATIOS = {"portrait": "2:3", "square": "1:1", "landscape": "3:2"}


class AIModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIModel
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"model-{n}")
    name = factory.Sequence(lambda n: f"Model {n}")
    kind = "image"
    provider = "local"
    provider_ref = ""
    credit_cost = 500
    timeout_seconds = 60
    aspect_ratios = factory.LazyFunction(lambda: dict(RATIOS))
    enabled = True


# Pictures of a tenth of a megapixel: every job a test runs draws, thumbnails, re-encodes and
# signs its pictures for real, and a fifth of the pixels is a fifth of that work. The renderer's
# own sizes are tested in test_prompt_help_and_shapes.py and test_local_jobs.py.
SMALL_PICTURES = {"megapixels": "0.1"}


def local_model(**kwargs) -> AIModel:
    defaults = {"input_defaults": SMALL_PICTURES}
    return AIModelFactory.create(key="test-local", name="Preview renderer", provider="local", **(defaults | kwargs))


def local_edit_model(**kwargs) -> AIModel:
    defaults = {"aspect_ratios": {"original": "original"}, "credit_cost": 1000}
    return AIModelFactory.create(key="test-local-edit", name="Preview editor", kind="image_edit", **(defaults | kwargs))


def replicate_model(**kwargs) -> AIModel:
    defaults = {"provider_ref": "black-forest-labs/flux-schnell", "timeout_seconds": 30}
    return AIModelFactory.create(key="test-replicate", name="FLUX test", provider="replicate", **(defaults | kwargs))


ORIGINAL = {"original": ""}


def local_upscaler(factor: int = 2, **kwargs) -> AIModel:
    defaults = {"aspect_ratios": ORIGINAL, "credit_cost": 100 * (factor + 1), "upscale_factor": factor,
                "image_input": "image", "name": f"Preview upscaler ×{factor}"}  # fmt: skip
    return AIModelFactory.create(key=f"test-local-upscale-{factor}x", kind="upscale", **(defaults | kwargs))


def local_animator(seconds: int = 3, **kwargs) -> AIModel:
    defaults = {"aspect_ratios": ORIGINAL, "credit_cost": 2_000 if seconds == 3 else 3_000,
                "duration_seconds": seconds, "image_input": "image", "name": f"Preview animation · {seconds} s"}  # fmt: skip
    return AIModelFactory.create(key=f"test-local-animate-{seconds}s", kind="animate", **(defaults | kwargs))
