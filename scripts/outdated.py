#!/usr/bin/env python3
"""List the pins of requirements.txt and requirements-dev.txt that are behind a newer release.

For every pinned package (direct or not) it shows the newest patch of the pinned minor version
(X.Y.*: bug and security fixes) and the newest release pyproject.toml's ranges allow, as the
package index answers now. It asks the index through the lock tool itself (`uv pip compile
--upgrade`, into a scratch file), so "allowed" means exactly what `make lock` would pick.
Nothing in the repository changes. Exit status 1 when any pin is behind, 0 when none is.

`--patches-to FILE` also writes the constraints that keep every package on its minor version,
which `make lock-patches` uses to move every pin to its newest patch at once.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"requirements.txt": [], "requirements-dev.txt": ["--extra", "dev"]}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {_normal(name): version for name, _extras, version in PIN.findall(text)}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _minor(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else parts[0]


def compile_lock(uv: str, extra: list[str], constraints: Path | None) -> dict[str, str]:
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [uv, "pip", "compile", "pyproject.toml", *extra, "--quiet", "--upgrade"]
        command += ["--python-version", "3.11", "-o", out.name]
        if constraints:
            command += ["--constraint", str(constraints)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)  # noqa: S603 (our own lock tool)
        if result.returncode != 0:
            raise SystemExit(
                result.stderr.strip() + "\n\nThe locks do not hold what pyproject.toml asks for "
                "(a raised lower bound?): run `make lock` first."
            )
        return pins(Path(out.name).read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default=str(ROOT / ".venv" / "bin" / "uv"))
    parser.add_argument("--patches-to", type=Path, help="write X.Y.* constraints for every pin to this file")
    args = parser.parse_args()

    current: dict[str, str] = {}
    for lock in LOCKS:
        current.update(pins((ROOT / lock).read_text()))
    with tempfile.TemporaryDirectory() as scratch:
        same_minor = Path(scratch) / "same-minor.txt"
        same_minor.write_text("".join(f"{name}=={_minor(version)}.*\n" for name, version in sorted(current.items())))
        if args.patches_to:
            args.patches_to.write_text(same_minor.read_text())
        newest: dict[str, str] = {}
        patches: dict[str, str] = {}
        for extra in LOCKS.values():
            newest.update(compile_lock(args.uv, extra, None))
            patches.update(compile_lock(args.uv, extra, same_minor))

    behind = []
    for name, version in sorted(current.items()):
        patch, allowed = patches.get(name, version), newest.get(name, version)
        if patch != version or allowed != version:
            behind.append((name, version, patch, allowed))
    if not behind:
        print(f"All {len(current)} pins are the newest releases their ranges allow.")
        return 0
    width = max(len(row[0]) for row in behind)
    print(f"{'package':<{width}}  {'pinned':<12} {'newest patch':<14} newest allowed")
    for name, version, patch, allowed in behind:
        mark_patch = patch if patch != version else "-"
        mark_allowed = allowed if allowed != version else "-"
        print(f"{name:<{width}}  {version:<12} {mark_patch:<14} {mark_allowed}")
    print(
        f"\n{len(behind)} of {len(current)} pins are behind. `make lock-patches` takes every newest patch; "
        "`make lock UPGRADE=<package>` moves one package to its newest allowed release."
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
