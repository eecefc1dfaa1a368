"""Slow clients cannot take the site down. The Procfile's web process, started as a
platform starts it, answers /healthz within a second while 100 connections trickle their
headers or their bodies, one byte at a time: gunicorn's three sync workers never see a request
before it has arrived whole (deploy/web.py puts nginx in front of them). bench/slow_clients.py
prints the same figures for gunicorn alone, which fails every check."""

from __future__ import annotations

from tests.procfile import procfile_web
from tests.slowclients import probe_healthz, probe_while_slow

SLOW_CONNECTIONS = 100


def test_healthz_answers_within_a_second_while_a_hundred_slow_clients_are_connected():
    env = {"DREAMPIXEL_ENV": "development", "DEBUG": "false", "WEB_CONCURRENCY": "3"}
    with procfile_web(env) as port:
        assert probe_healthz(port) is not None
        answers, still_open = probe_while_slow(port, slow=SLOW_CONNECTIONS)
    assert still_open == SLOW_CONNECTIONS  # all of them were open the whole time
    assert None not in answers, f"/healthz failed {answers.count(None)} of {len(answers)} checks: {answers}"
