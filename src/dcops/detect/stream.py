"""The lines of an event stream, ended cleanly by a signal (`dcops detect scan`).

`detect scan -` reads a live pipe (`tail -F events.jsonl | dcops detect scan -`). It detects a
batch at a time, so before this a batch that had not filled waited for more lines, and SIGTERM
killed the process with those lines read and never detected. A `LineStream` reads the file
descriptor itself (select, then read), so it can:

* end once `stop()` is called (the SIGTERM and SIGINT handler): what the pipe already holds
  is read too (up to 4 MiB: a writer that never pauses does not hold the exit up), and every
  line read, a last partial line included, is handed on and detected before the process exits;
* yield `IDLE` when the input has been quiet for `idle` seconds after some lines, so the
  reader can run the batch it holds without waiting for it to fill.

A stream without a file descriptor (a test's BytesIO) is read line by line, `stop()` checked
between lines.
"""

from __future__ import annotations

import io
import os
import select
from collections.abc import Iterator
from typing import Any, BinaryIO

IDLE = None  # yielded when the input has gone quiet with lines since the last IDLE
_CHUNK = 1 << 16
_DRAIN_MAX = 4 << 20  # after stop(): what the pipe already holds is read, up to this much


class LineStream:
    """Lines (with their newline) of a binary stream until its end or `stop()`."""

    def __init__(self, fh: BinaryIO, idle: float = 0.2) -> None:
        self._fh = fh
        self._idle = idle
        self.stopped = False

    def stop(self, *_: Any) -> None:
        """End the stream at its next poll (usable as a signal handler)."""
        self.stopped = True

    def lines(self) -> Iterator[bytes | None]:
        """The lines, with `IDLE` between them when the input pauses."""
        try:
            fd = self._fh.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            fd = -1
        if fd < 0:
            yield from self._plain()
            return
        pending: list[bytes] = []  # the start of a line not yet ended (a long line: pieces)
        fresh = False
        drain = -1  # once stopped: bytes still taken from what the pipe already holds
        while True:
            if self.stopped and drain < 0:
                drain = _DRAIN_MAX
            ready, _, _ = select.select([fd], [], [], 0 if drain >= 0 else self._idle)
            if not ready:
                if drain >= 0:
                    break
                if fresh:
                    fresh = False
                    yield IDLE
                continue
            data = os.read(fd, _CHUNK)
            if not data:
                break
            if drain >= 0:
                drain = max(drain - len(data), 0)
            got = _split(pending, data)
            yield from got
            fresh = fresh or bool(got)
            if drain == 0:  # a writer that never pauses does not hold the stop up
                break
        if pending:  # the last line without its newline (or cut by the stop)
            yield b"".join(pending)

    def _plain(self) -> Iterator[bytes]:
        for line in self._fh:
            yield line
            if self.stopped:
                return


def _split(pending: list[bytes], data: bytes) -> list[bytes]:
    """The lines `data` completes; `pending` keeps the unfinished rest (joined only once its
    newline comes, so a long line costs its length, not its length times its pieces)."""
    if b"\n" not in data:
        pending.append(data)
        return []
    if pending:
        pending.append(data)
        data = b"".join(pending)
        pending.clear()
    *whole, rest = data.split(b"\n")
    if rest:
        pending.append(rest)
    return [line + b"\n" for line in whole]
