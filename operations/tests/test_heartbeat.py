"""The dead-man's switch: the scheduler pings HEARTBEAT_URL every minute, so that its silence,
when the workers stop, pages someone from outside. (A real cluster's scheduler pinging it:
tests/faults/test_observability.py.)"""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from operations.tasks import ping_heartbeat_url
from tests.monitor import FakeMonitor

pytestmark = pytest.mark.django_db


def test_the_heartbeat_is_scheduled_every_minute(capsys):
    call_command("install_schedules")
    heartbeat = Schedule.objects.get(name="heartbeat")
    assert (heartbeat.func, heartbeat.schedule_type, heartbeat.minutes) == (
        "operations.tasks.ping_heartbeat_url", Schedule.MINUTES, 1
    )  # fmt: skip


def test_each_run_pings_the_monitor(settings):
    with FakeMonitor() as monitor:
        settings.HEARTBEAT_URL = f"{monitor.url}/ping/check-1"
        assert ping_heartbeat_url() is True
        assert ping_heartbeat_url() is True
    assert monitor.pings == ["/ping/check-1", "/ping/check-1"]


def test_a_monitor_that_is_down_costs_a_warning_not_the_task(settings, caplog):
    with FakeMonitor() as monitor:
        url = f"{monitor.url}/ping/check-1"
    settings.HEARTBEAT_URL = url  # nobody listens there any more
    with caplog.at_level(logging.WARNING, logger="operations.heartbeat"):
        assert ping_heartbeat_url() is False
    assert "the heartbeat ping failed" in caplog.text


def test_without_a_url_nothing_is_pinged(settings):
    settings.HEARTBEAT_URL = ""
    assert ping_heartbeat_url() is False
