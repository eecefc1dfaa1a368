from __future__ import annotations

from django import template

from operations.models import WorkerCluster
from operations.selectors import worker_clusters as clusters

register = template.Library()


@register.simple_tag
def worker_clusters() -> list[WorkerCluster]:
    return clusters()
