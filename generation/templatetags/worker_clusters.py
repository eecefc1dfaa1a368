from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def worker_clusters() -> list:
    from generation.selectors import worker_clusters as clusters

    return clusters()
