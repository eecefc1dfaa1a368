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


def local_model(**kwargs) -> AIModel:
    return AIModelFactory.create(key="test-local", name="Preview renderer", provider="local", **kwargs)


def local_edit_model(**kwargs) -> AIModel:
    defaults = {"aspect_ratios": {"original": "original"}, "credit_cost": 1000}
    return AIModelFactory.create(key="test-local-edit", name="Preview editor", kind="image_edit", **(defaults | kwargs))


def replicate_model(**kwargs) -> AIModel:
    defaults = {"provider_ref": "black-forest-labs/flux-schnell", "timeout_seconds": 30}
    return AIModelFactory.create(key="test-replicate", name="FLUX test", provider="replicate", **(defaults | kwargs))
