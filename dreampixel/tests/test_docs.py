from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _read_by_settings() -> set[str]:
    settings_source = (ROOT / "dreampixel" / "settings.py").read_text()
    return set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings_source))


def test_the_production_example_lists_every_variable_the_settings_read():
    read = _read_by_settings()
    example = ROOT / "deploy" / "production.env.example"
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example.read_text(), re.MULTILINE))
    assert read, "no variables found in settings.py"
    assert read <= listed, f"missing from {example.name}: {sorted(read - listed)}"
    assert listed <= read, f"{example.name} lists variables nothing reads: {sorted(listed - read)}"


def test_the_development_example_names_only_variables_something_reads():
    # Set or commented out: each is read by the settings, or is make dev's PORT.
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert "PORT" in named
    assert named <= _read_by_settings() | {"PORT"}, sorted(named - _read_by_settings())


def test_readme_gives_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", readme, re.DOTALL)
    assert commands[:2] == ["make dev", "make test"]


def test_every_alert_rule_has_a_promtool_test_and_a_runbook_entry():
    rules = set(re.findall(r"^\s+- alert: (\w+)$", (ROOT / "monitoring" / "alerts.yml").read_text(), re.MULTILINE))
    tested = set(re.findall(r"alertname: (\w+)", (ROOT / "monitoring" / "alerts_test.yml").read_text()))
    explained = set(re.findall(r"^### (\w+)$", (ROOT / "docs" / "runbook.md").read_text(), re.MULTILINE))
    assert rules, "no rules found"
    assert rules <= tested, f"alerts without a test: {sorted(rules - tested)}"
    assert rules <= explained, f"alerts the runbook does not explain: {sorted(rules - explained)}"
