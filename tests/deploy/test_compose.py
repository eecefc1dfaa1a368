"""The compose stack, as far as this machine can check it without a container
daemon or a registry: Compose's own validator (docker-compose config, the Compose
Specification's schema) reads compose.yaml with the example settings filled in; the stack has
every part a deployment needs and starts them in the release order; the settings it gives the app
pass production's deploy check; Caddy accepts the proxy's configuration and routes the bucket
and the site as the app's signed links expect. The image it builds is tested in test_image.py;
what was not checked is listed in docs/deployment.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.procfile import ROOT
from tests.production import production_secrets

FILLED = {
    "SECRET_KEY": "compose-check-" + "abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ",
    "POSTGRES_PASSWORD": "compose-check-postgres",
    "S3_SECRET_KEY": "compose-check-s3",
}


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    project = tmp_path_factory.mktemp("compose")
    for name in ("compose.yaml", "Dockerfile", "deploy/Caddyfile"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    # The signer's files as the operator puts them in ./secrets; the check below reads them here.
    secrets = production_secrets()
    (project / "secrets").mkdir()
    filled = dict(FILLED, MFA_ENCRYPTION_KEYS=secrets["MFA_ENCRYPTION_KEYS"])
    for name, file in (("C2PA_SIGNING_CERT", "c2pa-chain.pem"), ("C2PA_SIGNING_KEY", "c2pa-key.pem")):
        (project / "secrets" / file).write_text(secrets[name])
        filled[name] = str(project / "secrets" / file)
    lines = []
    for line in (ROOT / "deploy" / "compose.env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={filled[name]}" if name in filled else line)
    (project / ".env").write_text("\n".join(lines) + "\n")
    result = subprocess.run(["docker-compose", "config"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_stack_has_every_part_and_starts_them_in_the_release_order(resolved):
    services = resolved["services"]
    assert set(services) == {"release", "web", "worker", "db", "redis", "s3", "proxy"}
    for role in ("release", "web", "worker"):
        assert services[role]["image"] == "dreampixel:latest" and services[role]["command"] == [role]
    assert services["release"]["restart"] == "no"
    assert services["release"]["depends_on"]["db"]["condition"] == "service_healthy"
    for role in ("web", "worker"):
        assert services[role]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    assert {p["target"] for p in services["proxy"]["ports"]} == {80, 443}
    assert not any("ports" in services[name] for name in services if name != "proxy")  # only the proxy is exposed


def test_the_settings_it_gives_the_app_pass_the_production_deploy_check(resolved):
    environment = {k: str(v) for k, v in resolved["services"]["web"]["environment"].items()}
    assert environment["DREAMPIXEL_ENV"] == "production"
    assert environment["AWS_STORAGE_BUCKET_NAME"] in (ROOT / "deploy" / "Caddyfile").read_text()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**keep, **environment}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_caddy_routes_the_bucket_and_the_site_on_one_address():
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env={**os.environ, "SITE_ADDRESS": "dreampixel.example.com"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    server = next(iter(json.loads(result.stdout)["apps"]["http"]["servers"].values()))
    assert server["listen"] == [":443"]
    text = json.dumps(server)
    assert '"host": ["dreampixel.example.com"]' in text
    assert '"/dreampixel-media/*"' in text and '"dial": "s3:8333"' in text and '"dial": "web:8000"' in text
