"""Bounded line splitting for the file tailer: no line longer than the cap is ever held in memory.

A line is read up to `cap` bytes; the rest of a longer line is scanned (in chunks, never kept) up to
its newline. The reader keeps its position between calls, so a 100 MB line still being written is
scanned once, not from its start on every poll. Runs of NUL bytes at the start of a line (the hole a
crash leaves in a preallocated log file) are skipped, so the line written after them survives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import NamedTuple

CHUNK = 1 << 20  # bytes read per system call
_NOT_NUL = re.compile(rb"[^\x00]")


class Line(NamedTuple):
    """One line of a file: where it is, its first `cap` bytes and its full length."""

    start: int  # offset of its first byte
    end: int  # offset after its newline (after its last byte for a final unterminated line)
    data: bytes  # the line without its newline, cut at the cap
    size: int  # bytes of the line before cutting, without the newline

    @property
    def cut(self) -> bool:
        """The line was longer than the cap."""
        return self.size > len(self.data)


class LineReader:
    """Splits a file into capped lines from a position it remembers (see the module docstring)."""

    def __init__(self, cap: int, chunk: int = CHUNK) -> None:
        if cap < 1:
            raise ValueError(f"line cap {cap}: expected at least 1 byte")
        self.cap = cap
        self.chunk = max(chunk, 1)
        self.start = 0  # offset of the line being read (everything before it was yielded)
        self.scan = 0  # offset up to which the file has been looked at
        self.nul_runs = 0  # NUL runs skipped at line starts
        self._head = bytearray()  # first bytes (at most cap) of the line being read

    def reset(self, offset: int) -> None:
        """Start reading at `offset` (a line start), forgetting any partial line."""
        self.start = self.scan = offset
        self._head.clear()

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line seen so far (waiting for its newline)."""
        return self.scan - self.start

    def read(self, fd: int, *, final: bool = False) -> Iterator[Line]:
        """Complete lines from the position to the end of the file.

        `final` (the file is finished: rotated away or deleted) also yields a last line without a
        newline. The position advances with each yielded line, so a caller may stop iterating at
        any point and resume with another call.
        """
        cap, head = self.cap, self._head
        while True:
            base = self.scan
            chunk = os.pread(fd, self.chunk, base)
            if not chunk:
                break
            pos, n = 0, len(chunk)
            while pos < n:
                if not head and self.start == base + pos and chunk[pos] == 0:
                    m = _NOT_NUL.search(chunk, pos)
                    pos = m.start() if m else n
                    self.start = self.scan = base + pos
                    self.nul_runs += 1
                    continue
                nl = chunk.find(b"\n", pos)
                if nl >= 0 and not head:  # the whole line is in this chunk (the usual case)
                    start, end = self.start, base + nl + 1
                    self.start = self.scan = end
                    yield Line(start, end, chunk[pos : min(nl, pos + cap)], nl - pos)
                    pos = nl + 1
                    continue
                stop = n if nl < 0 else nl
                room = cap - len(head)
                if room > 0:
                    head += chunk[pos : min(stop, pos + room)]
                if nl < 0:
                    self.scan = base + n
                    break
                line = Line(self.start, base + nl + 1, bytes(head), base + nl - self.start)
                self.start = self.scan = base + nl + 1
                head.clear()
                pos = nl + 1
                yield line
        if final and self.scan > self.start:
            line = Line(self.start, self.scan, bytes(head), self.scan - self.start)
            self.start = self.scan
            head.clear()
            yield line


def utf8_text(data: bytes, cut: bool) -> str:
    """Decoded line text; a cut line loses the incomplete character at its end, invalid bytes
    become U+FFFD."""
    if cut:
        i = len(data)
        while i > 0 and len(data) - i < 3 and data[i - 1] & 0xC0 == 0x80:
            i -= 1
        if i > 0 and data[i - 1] >= 0xC0 and _seq_len(data[i - 1]) > len(data) - i + 1:
            data = data[: i - 1]
    return data.decode("utf-8", "replace").rstrip("\r")


def _seq_len(lead: int) -> int:
    return 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2


def last_line_end(fd: int) -> int:
    """Offset after the last newline in the file's last 64 KiB (its size if there is none)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 16), max(0, size - (1 << 16)))
    nl = tail.rfind(b"\n")
    return size if nl < 0 else size - len(tail) + nl + 1
