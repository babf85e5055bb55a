"""RELP (rsyslog's Reliable Event Logging Protocol) for the syslog server: acknowledged intake.

A forwarder (rsyslog `omrelp`) keeps every message until the server answers `rsp 200 OK` for its
transaction number, and sends unanswered ones again after a reconnect. dcops answers only once the
message is in the spool, so a SIGKILL of the collector loses nothing a forwarder sent (a message
stored but not yet answered is sent again: at-least-once, never lost).

Frames: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`; commands `open` (offers), `syslog`, `close`.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, NamedTuple

from dcops.collectors.syslog_net import StreamConn
from dcops.collectors.syslog_stream import Frame

if TYPE_CHECKING:
    from dcops.collectors.syslog import SyslogServer

_HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")
_PARTIAL = re.compile(rb"\d{0,9}(?: [A-Za-z]{0,32}(?: \d{0,9})?)?")
_MAX_HEADER = 64
_OFFERS = b"200 OK\nrelp_version=0\nrelp_software=dcops\ncommands=syslog"


class RelpFrame(NamedTuple):
    """One RELP command; `data` holds at most the cap, `size` what the frame carried."""

    txnr: int
    command: str
    data: bytes
    size: int


class RelpFramer:
    """RELP frames of one connection, in linear time; data beyond `cap` is read and dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap if cap > 0 else 1 << 62
        self.malformed = 0
        self.broken = ""  # why the stream is not RELP (the connection is then closed)
        self._hdr = b""
        self._frame: tuple[int, str, int] | None = None  # header of the frame being read
        self._data = bytearray()
        self._left = 0  # data bytes still to come; -1: the trailer LF

    def feed(self, data: bytes) -> list[RelpFrame]:
        """The frames completed by `data`."""
        out: list[RelpFrame] = []
        pos, end = 0, len(data)
        while pos < end and not self.broken:
            if self._frame is None:
                pos = self._header(data, pos, out)
            elif self._left > 0:
                take = min(self._left, end - pos)
                room = self.cap - len(self._data)
                if room > 0:
                    self._data += data[pos : pos + min(take, room)]
                self._left -= take
                pos += take
                if self._left == 0:
                    self._left = -1
            elif data[pos] == 10:  # the trailer
                txnr, cmd, size = self._frame
                out.append(RelpFrame(txnr, cmd, bytes(self._data), size))
                self._frame, self._data = None, bytearray()
                pos += 1
            else:
                self.broken = "no LF after the frame's data"
        return out

    def _header(self, data: bytes, pos: int, out: list[RelpFrame]) -> int:
        old = len(self._hdr)
        self._hdr += data[pos : pos + _MAX_HEADER - old]
        m = _HEADER.match(self._hdr)
        if m is None:
            if len(self._hdr) >= _MAX_HEADER or not _PARTIAL.fullmatch(self._hdr):
                self.broken = f"not a RELP frame header: {self._hdr[:40]!r}"
            return len(data)
        txnr, cmd, size = int(m[1]), m[2].decode().lower(), int(m[3])
        used = m.end() - old
        self._hdr = b""
        if m[4] == b"\n":
            if size:
                self.broken = f"frame {txnr}: LF where {size} bytes of data were announced"
            else:
                out.append(RelpFrame(txnr, cmd, b"", 0))
            return pos + used
        self._frame, self._left = (txnr, cmd, size), size if size else -1
        return pos + used

    def close(self) -> list[Frame]:
        """End of stream: a frame cut short is malformed (the forwarder sends it again)."""
        if self._frame is not None or self._hdr.strip():
            self.malformed += 1
        self._frame, self._hdr = None, b""
        return []


def _rsp(txnr: int, text: bytes) -> bytes:
    return b"%d rsp %d %s\n" % (txnr, len(text), text) if text else b"%d rsp 0\n" % txnr


class RelpConn(StreamConn):
    """One RELP forwarder: `syslog` frames are answered once the spool holds them."""

    def __init__(self, server: SyslogServer, source: str) -> None:
        super().__init__(server, source)
        self.relp = RelpFramer(server.cfg.max_message_bytes)
        self._unacked: list[int] = []  # txnrs of the read with the writer
        self._close_txnr: int | None = None
        self._write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit; bound what unread answers may hold in memory."""
        super().connection_made(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=256 * 1024)

    def received(self, data: bytes) -> None:
        """Frames of one read: answer `open` now, hand `syslog` data to the writer."""
        self.last = self.server.now()
        frames: list[Frame] = []
        for f in self.relp.feed(data):
            if self._close_txnr is not None:
                break
            if f.command == "syslog":
                self._unacked.append(f.txnr)
                data = f.data.rstrip(b"\r\n")
                frames.append(Frame(data, f.size, f.size > self.relp.cap))
            elif f.command == "open":
                self._send(_rsp(f.txnr, _OFFERS))
            elif f.command == "close":
                self._close_txnr = f.txnr
            else:
                self._send(_rsp(f.txnr, b"500 command not supported"))
        if self.relp.broken:
            self.server.stats["relp_errors"] += 1
            self._close_txnr = self._close_txnr or 0
        if frames:
            self.waiting = True
            if self.transport is not None and not self.transport.is_closing():
                self.transport.pause_reading()
            self.server.submit_stream(self, frames)
        elif self._close_txnr is not None:
            self._closing()

    def stored(self) -> None:
        """The spool holds the last read: answer every transaction of it, then read on."""
        acks, self._unacked = self._unacked, []
        self._send(b"".join(_rsp(t, b"200 OK") for t in acks))
        if self._close_txnr is not None:
            self.waiting = False
            self._closing()
        elif self._write_paused:
            self.waiting = False  # reading resumes when the peer has read our answers
        else:
            super().stored()

    def pause_writing(self) -> None:
        """The peer does not read its answers: stop reading from it too."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The answers drained: read again."""
        self._write_paused = False
        if not self.waiting and not self.closed:
            super().stored()

    def end_of_stream(self) -> tuple[list[Frame], int]:
        """A frame cut short is malformed (unanswered: the forwarder sends it again)."""
        return self.relp.close(), self.relp.malformed

    def finish(self, *, error: bool = False, abort: bool = False) -> None:
        """Tell a forwarder still connected that the server goes away, then close."""
        if not self.closed and not abort and self._close_txnr is None:
            self._send(b"0 serverclose 0\n")
        super().finish(error=error, abort=abort)

    def _closing(self) -> None:
        if self._close_txnr:
            self._send(_rsp(self._close_txnr, b""))
        self.finish()

    def _send(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
