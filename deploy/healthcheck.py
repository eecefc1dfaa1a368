#!/usr/bin/env python3
"""The container image's HEALTHCHECK: a web container answers /healthz on $PORT within 5 s.

Which process the container runs is read from its PID 1 (or given: `healthcheck.py web`); a
worker or the release step has no port, and is healthy while its process runs, which the
container's own life already shows."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def role() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        first = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return "web"
    return "web" if b"deploy/web.py" in first else "other"


def main() -> int:
    if role() != "web":
        return 0
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
