"""The platform guide's blueprint (render.yaml), checked as far as this machine can
without a Render account: it runs the repository's image with the image's own entrypoint for
web, worker and the release step; every setting production refuses to start without is provided
or asked for; the Key Value store never evicts the task queue; and the settings a first sync
gives the web service (the asked-for values filled in) pass production's deploy check."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.procfile import ROOT
from tests.production import production_secrets

BLUEPRINT = yaml.safe_load((ROOT / "render.yaml").read_text())
# What the web process reads besides the settings (the Procfile, deploy/web.py).
PROCESS_VARIABLES = {"PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "WEB_FRONT", "MIGRATION_LOCK_TIMEOUT"}
FIRST_SYNC = {  # what an operator types when Render asks
    "SECRET_KEY": "render-check-" + "abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ",
    "ALLOWED_HOSTS": "dreampixel.example.com,dreampixel-web.onrender.com",
    "CSRF_TRUSTED_ORIGINS": "https://dreampixel.example.com",
    "PUBLIC_BASE_URL": "https://dreampixel.example.com",
    "EMAIL_HOST": "smtp.example.com",
    "AWS_STORAGE_BUCKET_NAME": "dreampixel-media",
    "AWS_S3_REGION_NAME": "eu-west-1",
    **production_secrets(),
}


def _service(name: str) -> dict:
    return next(s for s in BLUEPRINT["services"] if s["name"] == name)


def _variables(service: dict) -> dict[str, dict]:
    group = {v["key"]: v for v in BLUEPRINT["envVarGroups"][0]["envVars"]}
    variables = {}
    for entry in service["envVars"]:
        variables.update(group if "fromGroup" in entry else {entry["key"]: entry})
    return variables


def _read_by_settings() -> set[str]:
    return set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', (ROOT / "dreampixel" / "settings.py").read_text()))


def test_web_worker_and_release_run_the_repository_image_through_its_entrypoint():
    entrypoint = re.search(r'ENTRYPOINT \["([^"]+)"\]', (ROOT / "Dockerfile").read_text()).group(1)
    web, worker = _service("dreampixel-web"), _service("dreampixel-worker")
    assert (web["type"], worker["type"]) == ("web", "worker")
    for service in (web, worker):
        assert service["runtime"] == "docker" and service["dockerfilePath"] == "./Dockerfile"
    assert web["dockerCommand"] == f"{entrypoint} web"
    assert worker["dockerCommand"] == f"{entrypoint} worker"
    assert web["preDeployCommand"] == f"{entrypoint} release"
    assert web["healthCheckPath"] in ("/healthz", "/readyz")


@pytest.mark.parametrize("name", ["dreampixel-web", "dreampixel-worker"])
def test_every_setting_is_one_the_app_reads_and_production_gets_what_it_requires(name):
    variables = _variables(_service(name))
    assert set(variables) <= _read_by_settings() | PROCESS_VARIABLES, sorted(set(variables) - _read_by_settings())
    for required in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "EMAIL_HOST"):
        assert required in variables
    assert variables["SECRET_KEY"].get("sync") is False  # Render's generated values are too short


def test_the_key_value_store_never_evicts_the_task_queue():
    store = next(s for s in BLUEPRINT["services"] if s["type"] == "keyvalue")
    assert store["maxmemoryPolicy"] in ("volatile-lru", "volatile-ttl", "noeviction")


def test_a_first_sync_gives_the_web_service_settings_that_pass_the_deploy_check():
    environment = {"DREAMPIXEL_ENV": "production"}  # set by the image
    for key, entry in _variables(_service("dreampixel-web")).items():
        if "value" in entry:
            environment[key] = str(entry["value"])
        elif "fromDatabase" in entry:
            environment[key] = "postgres://dreampixel:secret@dpg-example-a:5432/dreampixel"
        elif "fromService" in entry:
            environment[key] = "redis://red-example:6379"
        elif key in FIRST_SYNC:
            environment[key] = FIRST_SYNC[key]
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**keep, **environment}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
