"""A batch as one zip, streamed: each file is read from storage in blocks and sent on at once,
so neither the archive nor a whole file is ever held in memory."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

BLOCK = 256 * 1024


class _Sink(io.RawIOBase):
    """Where ZipFile writes; the generator hands out what arrived since the last block. Not
    seekable, so ZipFile writes data descriptors instead of going back to fix headers."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_stream(files: Iterable[tuple[str, Callable[[], IO[bytes]]]]) -> Iterator[bytes]:
    """Yield a zip archive of (name, opener) pairs piece by piece. Photos and videos are
    compressed already: they are stored as they are."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, opener in files:
            with opener() as source, archive.open(name, "w") as entry:
                while block := source.read(BLOCK):
                    entry.write(block)
                    if chunk := sink.drain():
                        yield chunk
            if chunk := sink.drain():
                yield chunk
    yield sink.drain()  # the central directory
