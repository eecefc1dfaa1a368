"""Slow clients with real sockets, and a health probe that waits at most a second."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time


class Tricklers:
    """`count` connections: half send headers that never end, half a body that never ends. Each
    gets one more byte every half second, so no server timeout between two reads ever fires
    (only a bound on the whole request would)."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if n % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            else:
                sock.sendall(
                    b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nlogin="
                )
            self.sockets.append(sock)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(0.5):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def still_open(self) -> int:
        """How many the server has neither answered nor closed."""
        waiting = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)  # an answer (a 408, a 400) or b"" (closed)
            except BlockingIOError:
                waiting += 1  # nothing to read: the server still waits for the rest
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return waiting

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def probe_healthz(port: int, timeout: float = 1.0) -> float | None:
    """Seconds until /healthz answered 200 on a new connection, or None if not within `timeout`."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
    except OSError:
        return None
    finally:
        connection.close()
    elapsed = time.monotonic() - started
    return elapsed if response.status == 200 and elapsed <= timeout else None


def probe_while_slow(port: int, *, slow: int, probes: int = 9, gap: float = 0.3) -> tuple[list[float | None], int]:
    """Open `slow` trickling connections, wait a second, probe /healthz `probes` times; return the
    answers and how many slow connections were still open after the last probe."""
    tricklers = Tricklers(port, slow)
    try:
        time.sleep(1)  # long enough for every worker to be stuck, were it reading them
        answers = []
        for _ in range(probes):
            answers.append(probe_healthz(port))
            time.sleep(gap)
        return answers, tricklers.still_open()
    finally:
        tricklers.close()
