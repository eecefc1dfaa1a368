#!/usr/bin/env python3
"""Run a command (`honcho start` for `make dev`) as the terminal's foreground job.

Ctrl-C then reaches that command alone, which stops its processes cleanly and exits; `make`
never sees the interrupt, so it does not report `Interrupt` or `Error 130`. Without a terminal
(CI, a pipe) the command simply runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

INTERRUPTED = (130, -signal.SIGINT)  # honcho's exit code after Ctrl-C, or death by SIGINT


def main(command: list[str]) -> int:
    try:
        terminal = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        terminal = None
    if terminal is None or os.tcgetpgrp(terminal) != os.getpgrp():
        return subprocess.call(command)  # noqa: S603 (the Makefile's own command)
    child = subprocess.Popen(command, process_group=0)  # noqa: S603 (the Makefile's own command)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # taking the terminal back from the background
    os.tcsetpgrp(terminal, child.pid)
    try:
        code = child.wait()
    finally:
        os.tcsetpgrp(terminal, os.getpgrp())
    return 0 if code in INTERRUPTED else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
