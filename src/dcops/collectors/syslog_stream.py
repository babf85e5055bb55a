"""RFC 6587 stream framing (octet counting or newline) with a per-message cap, in linear time.

`StreamFramer` keeps at most `cap` bytes of a frame in progress: a longer frame is cut at the cap,
marked with its original size, and the rest of it is discarded as it arrives (never buffered), so
a peer sending 10 MB without a newline costs the cap in memory, not 10 MB. Every byte is looked at
a constant number of times whatever the read boundaries (bytearray appends, searches only in new
data), so a peer trickling one byte per segment cannot make framing quadratic.

An octet count larger than `max_frame` is not believed (rsyslog's MaxFrameSize, 200,000 by
default): `99999999 x` would otherwise swallow the next 100 MB of the connection, every message
in it. Like rsyslog, the framer counts a framing error and reads that message with newline
framing (the digits stay part of it), so the messages after it are kept.
"""

from __future__ import annotations

from typing import NamedTuple

_MAX_LEN_DIGITS = 9  # an octet count of up to 999,999,999 bytes
DEFAULT_MAX_FRAME = 200_000  # rsyslog imtcp's MaxFrameSize default


class Frame(NamedTuple):
    """One message off the wire, cut at the cap if it was longer."""

    data: bytes
    size: int  # bytes the message had on the wire (before any cut)
    truncated: bool


class StreamFramer:
    """Frames of one TCP/TLS connection; `cap` 0 means no limit.

    `max_frame`: the largest octet count believed (at least `cap`; None: the default).
    """

    def __init__(self, cap: int, max_frame: int | None = None) -> None:
        self.cap = cap if cap > 0 else 1 << 62
        self.max_frame = max(self.cap, DEFAULT_MAX_FRAME if max_frame is None else max_frame)
        self.malformed = 0  # half octet-counted frames at the end of the stream
        self.framing_errors = 0  # octet counts beyond max_frame, read as newline-framed
        self._head = b""  # a few digits at the end of a read: maybe an octet count, maybe not
        self._body: bytearray | None = None  # the frame in progress (its first `cap` bytes)
        self._size = 0  # bytes of the frame in progress so far
        self._left = -1  # octet counting: body bytes still to come; -1: newline framing
        self._content = False  # newline framing: the line so far holds more than NULs and CRs

    @property
    def buffered(self) -> int:
        """Bytes held for a frame in progress (at most cap + a few digits)."""
        return len(self._head) + (len(self._body) if self._body is not None else 0)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`; the rest is kept (up to the cap) for the next read."""
        out: list[Frame] = []
        if self._head:
            data, self._head = self._head + data, b""
        pos, end = 0, len(data)
        while pos < end:
            if self._body is not None:
                pos = self._continue(data, pos, out)
                continue
            if 48 <= data[pos] <= 57:  # a digit: octet counting, LEN SP MSG
                nxt = self._counted(data, pos, out)
                if nxt is not None and nxt < 0:
                    break
                if nxt is not None:
                    pos = nxt
                    continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._begin(-1)
                continue
            if nl - pos <= self.cap:
                frame = data[pos:nl].rstrip(b"\r\x00")
                if frame:
                    out.append(Frame(frame, nl - pos, False))
            elif _content(data[pos:nl]):  # a line of only NULs and CRs is no message, cut or not
                out.append(Frame(data[pos : pos + self.cap].rstrip(b"\r\x00"), nl - pos, True))
            pos = nl + 1
        return out

    def _counted(self, data: bytes, pos: int, out: list[Frame]) -> int | None:
        """An octet-counted frame at `pos`: where the next one starts (-1: digits kept for the
        next read), or None when it is newline-framed after all."""
        sp = data.find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
        if sp > pos and data[pos:sp].isdigit():
            n, start = int(data[pos:sp]), sp + 1
            if n > self.max_frame:
                self.framing_errors += 1  # not a count we believe: a line
                return None
            if n <= self.cap and len(data) - start >= n:
                out.append(Frame(data[start : start + n].rstrip(b"\r\n"), n, False))
                return start + n
            self._begin(n)
            return start
        if sp < 0 and len(data) - pos <= _MAX_LEN_DIGITS:
            self._head = data[pos:]
            return -1
        return None

    def close(self) -> list[Frame]:
        """The end of the stream: a last unterminated line is a frame; half a counted one is not."""
        out: list[Frame] = []
        if self._head.strip():
            out.append(Frame(self._head.rstrip(b"\r\n"), len(self._head), False))
        if self._body is not None:
            if self._left >= 0:
                self.malformed += 1
            else:
                frame = bytes(self._body).rstrip(b"\r\n\x00")
                if frame.strip():
                    out.append(Frame(frame, self._size, self._size > self.cap))
        self._head, self._body, self._size, self._left = b"", None, 0, -1
        return out

    def _begin(self, left: int) -> None:
        self._body, self._size, self._left = bytearray(), 0, left
        self._content = False

    def _take(self, data: bytes, a: int, b: int) -> None:
        """Append data[a:b] to the frame in progress, keeping at most `cap` bytes of it."""
        assert self._body is not None
        room = self.cap - len(self._body)
        if room > 0:
            self._body += data[a : min(b, a + room)]
        self._size += b - a
        if self._left < 0 and not self._content:
            self._content = _content(data[a:b])

    def _continue(self, data: bytes, pos: int, out: list[Frame]) -> int:
        """Feed the frame in progress from data[pos:]; returns where the next frame starts."""
        assert self._body is not None
        end = len(data)
        if self._left >= 0:  # octet counted: take exactly the announced length
            stop = pos + min(self._left, end - pos)
            self._take(data, pos, stop)
            self._left -= stop - pos
            if self._left == 0:
                out.append(Frame(bytes(self._body).rstrip(b"\r\n"), self._size,
                                 self._size > self.cap))
                self._body, self._left = None, -1
            return stop
        nl = data.find(b"\n", pos)
        if nl < 0:
            self._take(data, pos, end)
            return end
        self._take(data, pos, nl)
        if self._content:  # the whole line, not only the part kept, decides (as uncut)
            frame = bytes(self._body).rstrip(b"\r\x00")
            out.append(Frame(frame, self._size, self._size > self.cap))
        self._body = None
        return nl + 1


def _content(line: bytes) -> bool:
    """Whether a line holds anything but NULs and CRs (what rstrip would leave)."""
    return bool(line.translate(None, b"\r\x00"))


def split_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """Split complete frames off `buf` with no cap; return them and the incomplete rest.

    The stateless reference form of the framing (RFC 6587 octet counting or newline), kept as
    the oracle the streaming `StreamFramer` is tested against.
    """
    frames: list[bytes] = []
    pos, end = 0, len(buf)
    while pos < end:
        if 48 <= buf[pos] <= 57:
            sp = buf.find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
            if sp > pos and buf[pos:sp].isdigit():
                n = int(buf[pos:sp])
                if end < sp + 1 + n:
                    break
                frames.append(buf[sp + 1 : sp + 1 + n].rstrip(b"\r\n"))
                pos = sp + 1 + n
                continue
            if sp < 0 and end - pos <= _MAX_LEN_DIGITS:
                break
        nl = buf.find(b"\n", pos)
        if nl < 0:
            break
        frame = buf[pos:nl].rstrip(b"\r\x00")
        pos = nl + 1
        if frame:
            frames.append(frame)
    return frames, buf[pos:]
