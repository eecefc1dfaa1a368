#!/usr/bin/env python3
"""`make dev`'s worker: `qcluster`, stopped the way it stops cleanly.

honcho stops a process by signalling its whole process group, so every qcluster process (the
sentinel and each worker, pusher and monitor) got SIGTERM at once; interrupted that way the
cluster hung past honcho's five seconds and was killed. Here qcluster runs in a session of its
own, and a stop request is passed on to its main process alone, which then stops its workers
in order (about three seconds)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=root, start_new_session=True)

    def stop(signum, frame) -> None:
        cluster.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = cluster.wait()
    return 0 if code in (0, -signal.SIGTERM) else code


if __name__ == "__main__":
    sys.exit(main())
