from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DREAMPIXEL_ENV": "production",
    "SECRET_KEY": "k" * 30 + "-production-secret-with-enough-variety-0123456789",
    "ALLOWED_HOSTS": "dreampixel.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://dreampixel.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/dreampixel",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_HOST": "smtp.example.com",
    "MFA_ENCRYPTION_KEYS": "q3Lw0ZzGQ4lWcXb1V3k2pT8yR6nM9sJ5hF7dC0aE1xU=",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    leave_out = {*PRODUCTION_ENV, "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "EMAIL_BACKEND"}
    clean = {k: v for k, v in os.environ.items() if k not in leave_out}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_fails_at_start_with_a_clear_message():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_without_a_key_for_second_factor_secrets_fails_at_start():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "MFA_ENCRYPTION_KEYS"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "MFA_ENCRYPTION_KEYS is not set" in result.stderr
    result = manage("check", env={**PRODUCTION_ENV, "MFA_ENCRYPTION_KEYS": "not-a-key"})
    assert result.returncode != 0
    assert "must be a Fernet key" in result.stderr


def test_production_without_redis_fails_at_start_because_limits_would_not_hold():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "REDIS_URL"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stderr


def test_production_without_a_mail_server_fails_at_start_instead_of_logging_reset_links():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "EMAIL_HOST"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "EMAIL_HOST is not set" in result.stderr
    result = manage("check", env={**env, "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"})
    assert result.returncode != 0
    assert "EMAIL_BACKEND" in result.stderr
    # An explicit sending backend (an API-based one, say) is a real configuration.
    result = manage("check", env={**env, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"})
    assert result.returncode == 0, result.stderr


def test_production_without_a_database_url_fails_at_start_instead_of_using_sqlite():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DATABASE_URL"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


@pytest.mark.parametrize("key", ["x", "k" * 60, "django-insecure-" + "abcdefghij" * 5])
def test_production_with_a_weak_secret_key_fails_at_start(key):
    result = manage("check", env={**PRODUCTION_ENV, "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_trusted_proxy_network_that_is_not_one_names_the_variable():
    result = manage("check", env={"TRUSTED_PROXY_NETWORKS": "10.0.0.0/8, not-a-network"})
    assert result.returncode != 0
    assert "TRUSTED_PROXY_NETWORKS: 'not-a-network'" in result.stderr


def test_a_bad_value_names_the_variable():
    result = manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_typed_readers(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a.com, b.com,,")
    assert env_bool("X_BOOL", False) is True
    assert env_int("X_INT", 0) == 12
    assert env_list("X_LIST") == ["a.com", "b.com"]
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="X_INT must be an integer"):
        env_int("X_INT", 0)
    monkeypatch.setenv("X_INT", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("X_INT", 0, minimum=0)
