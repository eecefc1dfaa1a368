from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list
from core.signing import certificate_pair, dev_signing_credentials

ROOT = Path(__file__).resolve().parents[2]

# A signing certificate issued by a certificate authority (made up here, as an operator's would
# be issued): what production signs Content Credentials with.
SITE_CHAIN, SITE_KEY, _ = certificate_pair(organization="Dream Pixel Example Ltd")

PRODUCTION_ENV = {
    "DREAMPIXEL_ENV": "production",
    "SECRET_KEY": "k" * 30 + "-production-secret-with-enough-variety-0123456789",
    "ALLOWED_HOSTS": "dreampixel.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://dreampixel.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/dreampixel",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_HOST": "smtp.example.com",
    "C2PA_SIGNING_CERT": SITE_CHAIN.decode(),
    "C2PA_SIGNING_KEY": SITE_KEY.decode(),
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


def test_production_without_a_signing_certificate_fails_at_start_because_results_must_say_they_are_ai():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "C2PA_SIGNING_CERT"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "C2PA_SIGNING_CERT is not set" in result.stderr


def test_production_refuses_the_development_certificate_and_a_self_signed_one(tmp_path):
    chain, key, _ = dev_signing_credentials()
    result = manage(
        "check", env={**PRODUCTION_ENV, "C2PA_SIGNING_CERT": chain.decode(), "C2PA_SIGNING_KEY": key.decode()}
    )
    assert result.returncode != 0 and "the development certificate" in result.stderr

    # A certificate that signs itself: just the first of a pair, issued by nobody else.
    root_key, root_chain = _self_signed()
    result = manage("check", env={**PRODUCTION_ENV, "C2PA_SIGNING_CERT": root_chain, "C2PA_SIGNING_KEY": root_key})
    assert result.returncode != 0 and "self-signed" in result.stderr

    # Someone else's key next to the site's certificate.
    _, other_key, _ = certificate_pair(organization="Someone Else")
    result = manage("check", env={**PRODUCTION_ENV, "C2PA_SIGNING_KEY": other_key.decode()})
    assert result.returncode != 0 and "is not the private key" in result.stderr


def test_production_reads_the_certificate_and_key_from_files(tmp_path):
    (tmp_path / "chain.pem").write_bytes(SITE_CHAIN)
    (tmp_path / "key.pem").write_bytes(SITE_KEY)
    env = {
        **PRODUCTION_ENV,
        "C2PA_SIGNING_CERT": str(tmp_path / "chain.pem"),
        "C2PA_SIGNING_KEY": str(tmp_path / "key.pem"),
    }
    assert manage("check", env=env).returncode == 0
    result = manage("check", env={**env, "C2PA_SIGNING_KEY": str(tmp_path / "missing.pem")})
    assert result.returncode != 0 and "C2PA_SIGNING_KEY is neither PEM text nor the path" in result.stderr


def _self_signed() -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signs itself")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem.decode(), certificate.public_bytes(serialization.Encoding.PEM).decode()


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


def test_production_refuses_the_payments_sandbox():
    result = manage("check", env={**PRODUCTION_ENV, "PAYMENTS_SANDBOX": "true"})
    assert result.returncode != 0
    assert "PAYMENTS_SANDBOX is for `make dev` only" in result.stderr


def test_make_dev_runs_the_payments_sandbox_beside_the_site():
    makefile = (ROOT / "Makefile").read_text()
    dev = makefile[makefile.index("\ndev:") :].split("\n\n")[0]
    assert "PAYMENTS_SANDBOX=true" in dev
    procfile = (ROOT / "Procfile.dev").read_text()
    assert "payments: exec python scripts/dev_payments.py" in procfile
