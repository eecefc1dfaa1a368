"""The client's address, the one key every per-IP limit counts on (django-ratelimit and allauth).

Behind N proxies the client is the Nth address from the right of X-Forwarded-For: each proxy
appends the address it saw, so everything further left was written by the client and is
ignored. TRUSTED_PROXY_COUNT says how many proxies there are (0: none, REMOTE_ADDR is the
client); TRUSTED_PROXY_NETWORKS, when set, says where the nearest one must connect from, so a
client reaching gunicorn directly cannot forge the header. django-ipware parses the hops
(ports, brackets, IPv6); anything it cannot read falls back to the peer address, never a 500.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip

# What a request without any usable address is counted as (it cannot happen under gunicorn).
UNKNOWN = "0.0.0.0"  # noqa: S104


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in spec)


def _forwarded(value: str) -> HttpRequest:
    # ipware reads only a request's META: one that carries just the header to parse.
    request = HttpRequest()
    request.META = {"HTTP_X_FORWARDED_FOR": value}
    return request


def _parse(value: str) -> str | None:
    ip, _ = get_client_ip(
        _forwarded(value),
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        strict=True,
    )
    return ip


def _peer_is_trusted(peer: str) -> bool:
    networks = _networks(tuple(settings.TRUSTED_PROXY_NETWORKS))
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    peer = _parse(str(request.META.get("REMOTE_ADDR") or "")) or UNKNOWN
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0 or not _peer_is_trusted(peer):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    hops = [hop.strip() for hop in forwarded.split(",")]
    if len(hops) < count:
        return peer  # fewer hops than proxies: not a request that came through all of them
    # Only the hops our own proxies wrote are read; the client's own entries are further left.
    trusted = ",".join([*hops[-count:], peer])
    ip, _ = get_client_ip(
        _forwarded(trusted),
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        proxy_count=count,
        strict=True,
    )
    return ip or peer
