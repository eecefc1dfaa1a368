"""The dead-man's switch: a ping every minute to HEARTBEAT_URL, from the scheduler on the workers.

Every other alert of the site is sent by a task the workers run, so when the workers stop the
alerts stop with them. A monitor outside (healthchecks.io, Cronitor, Dead Man's Snitch, Better
Stack...) expects this ping every minute and pages someone when it stops coming: silence is the
alert, and it needs nothing of ours to be working (docs/runbook.md, "No heartbeat").
"""

from __future__ import annotations

import logging

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)


def heartbeat_ping() -> bool:
    """True if the monitor took the ping. A monitor that is down or slow costs a warning, never
    the task: the next minute pings again."""
    if not settings.HEARTBEAT_URL:
        return False
    try:
        response = httpx.get(settings.HEARTBEAT_URL, timeout=10, headers={"User-Agent": "dreampixel-heartbeat"})
        response.raise_for_status()
    except httpx.HTTPError as error:
        logger.warning("the heartbeat ping failed: %s", error)
        return False
    return True
