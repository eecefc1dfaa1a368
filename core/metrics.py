"""What each web process counts for /metrics: requests by view and status with their time, and
webhooks refused. The site's own figures (jobs, the queue, workers, money) are read when
Prometheus asks, in operations/metrics.py.

gunicorn runs several worker processes, and any one of them answers a scrape. With
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it before the workers start) each process
keeps its counts in a file there and the answer adds up every process's file; without it
(runserver, the tests) the counts are this process's own.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from core.clientip import client_ip

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram(
    "dreampixel_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view (its URL name) and status.",
    ["view", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOKS_REFUSED = Counter(
    "dreampixel_webhooks_refused_total",
    "Webhook deliveries answered 400: a bad signature, a stale timestamp or a body that is not an event.",
    ["provider"],
)


def webhook_refused(provider: str) -> None:
    WEBHOOKS_REFUSED.labels(provider=provider).inc()


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    # Refused before routing (too large, a bad host) or matching no URL: one label, not one per path.
    return (match.view_name or "unnamed") if match is not None else "unrouted"


class RequestMetricsMiddleware:
    """Times each request and counts it under its view's URL name, never its path: the number of
    series stays that of the site's views."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_SECONDS.labels(view=_view_name(request), status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def process_metrics() -> bytes:
    """This process's counts, or every gunicorn worker's in multiprocess mode, as Prometheus text."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def scrape_allowed(request: HttpRequest) -> bool | None:
    """Whether this request may read /metrics and the deep check: it carries METRICS_TOKEN as a
    bearer token, or comes from a network of METRICS_ALLOWED_NETWORKS (the client's address, read
    behind trusted proxies as the rate limits read it). None when neither is set: they are off."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return None
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if networks:
        try:
            address = ipaddress.ip_address(client_ip(request))
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(network, strict=False) for network in networks)
    return False
