"""Deploy by the docs: docs/deployment.md's "A plain host, step by step" is this
test's script. On a fresh checkout (the tracked files, nothing built) with production settings,
it runs the section's command blocks in order, as the comment above each says (`run`: a shell
runs it to the end; `start`: each line is a long-lived service; `skip`: the test does that part
itself), then uses the site as a person would: `/` and `/accounts/login/` answer 200, a sign-up
gets its verification mail, a signed-in `/create/` answers 200, and a picture is made by the
worker and downloaded from the bucket."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.deploy import journey
from tests.procfile import ROOT, free_port, wait_for_healthz

DOC = ROOT / "docs" / "deployment.md"
SECTION = "## A plain host, step by step"
BLOCK = re.compile(r"<!-- deploy-test: (run|start|skip)\b[^>]*-->\s*```sh\n(.*?)```", re.DOTALL)


def doc_steps() -> list[tuple[str, str]]:
    text = DOC.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    steps = BLOCK.findall(section)
    # Every shell block in the section says what the test does with it: none is left out unseen.
    assert len(steps) == section.count("```sh"), "a ```sh block without a <!-- deploy-test: ... --> line"
    return steps


def fresh_checkout(destination: Path) -> None:
    """What `git clone` of this working tree gives: the tracked files (and new ones not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_a_fresh_checkout_deployed_by_the_docs_serves_the_site(tmp_path, production_env, mailbox):
    steps = doc_steps()
    assert [kind for kind, _ in steps if kind != "skip"] == ["run", "run", "run", "start"]
    checkout = tmp_path / "dreampixel"
    fresh_checkout(checkout)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "VIRTUAL_ENV"))},
        **production_env,
        "PORT": str(port),
        "PATH": os.environ["PATH"].replace(f"{ROOT / '.venv' / 'bin'}:", ""),
    }
    services: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        for kind, block in steps:
            if kind == "run":
                result = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block], cwd=checkout, env=env,
                    capture_output=True, text=True, timeout=600,
                )  # fmt: skip
                assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            elif kind == "start":
                for line in filter(None, (line.strip() for line in block.splitlines())):
                    # Its log to a file: a pipe nobody reads fills up and stalls the service.
                    log = logs / f"service-{len(services)}.log"
                    with log.open("wb") as output:
                        services.append(
                            subprocess.Popen(
                                ["bash", "-c", line],
                                cwd=checkout,
                                env=env,
                                start_new_session=True,
                                stdout=subprocess.DEVNULL,
                                stderr=output,
                            )
                        )
        assert wait_for_healthz(port, 60), _logs(logs)

        browser = journey.Browser(f"http://127.0.0.1:{port}")
        try:
            assert browser.get("/").status_code == 200
            assert browser.get("/accounts/login/").status_code == 200
            journey.sign_up_and_confirm(browser, mailbox, journey.new_address("docs"))
            assert browser.get("/create/").status_code == 200
            job_page = journey.create_picture(browser, "a lighthouse at dusk, deployed by the docs")
            page = journey.wait_until_finished(browser, job_page)
            assert 'data-status="succeeded"' in page
            assert journey.fetch_output(browser, page)[:4] in (
                b"\x89PNG",
                b"RIFF",
                b"\xff\xd8\xff\xe0",
                b"\xff\xd8\xff\xe1",
            )
        except AssertionError:
            print(_logs(logs))
            raise
        browser.close()
    finally:
        for service in services:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + 40
        for service in services:
            try:
                service.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)


def _logs(folder: Path) -> str:
    """The last lines each service wrote, for a failure's report."""
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in sorted(folder.glob("*.log"))
    )
