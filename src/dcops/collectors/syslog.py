"""Syslog server: RFC 3164 and RFC 5424 over UDP, TCP (octet counting or newline framing) and TLS.

Messages go through a bounded queue to one writer that normalises them and publishes batches to
the EventSink; a full queue stops reading from TCP peers (backpressure) and drops UDP datagrams
(counted: UDP has no flow control). A message is accepted once `publish` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcops.collectors.parsers import Normaliser
from dcops.errors import CollectorError
from dcops.model.event import Event
from dcops.model.sinks import EventSink

_Item = tuple[list[bytes], str, float] | None
_MAX_LEN_DIGITS = 9


@dataclass(slots=True)
class SyslogConfig:
    """Where and how the server listens; a port of None disables that transport, 0 picks one."""

    host: str = "127.0.0.1"
    udp_port: int | None = 514
    tcp_port: int | None = 514
    tls_port: int | None = None
    tls: ssl.SSLContext | None = None
    unix_sockets: dict[str, str] = field(default_factory=dict)  # socket path -> host name
    queue_size: int = 10_000
    batch: int = 500
    max_message: int = 64 * 1024
    audit_idle: float = 1.0  # seconds after which held-back audit records are flushed
    drain_timeout: float = 5.0  # on stop, seconds to keep reading from connected peers
    stats: Counter[str] = field(default_factory=Counter)


def server_tls_context(
    cert: str | Path,
    key: str | Path,
    ca: str | Path | None = None,
    *,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """TLS context for the listener (the PKI role's server certificate; optional client auth).

    `cert` should be the full chain (host certificate then issuing CA, the pki_cert role's
    fullchain.pem) so that forwarders trusting only the root can verify it. With
    `require_client_cert`, `ca` (the PKI chain) is the only trust for client certificates.
    """
    if require_client_cert and not ca:
        raise CollectorError(
            "mutual TLS (--require-client-cert) needs --tls-ca, the CA chain that issues the "
            "forwarders' certificates"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
        if ca:
            ctx.load_verify_locations(str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise CollectorError(f"TLS certificate {cert} / key {key}: {exc}") from exc
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _count_refusals(ctx: ssl.SSLContext, stats: Counter[str]) -> None:
    """Count TLS handshakes the listener refuses (no or untrusted client certificate, not TLS).

    asyncio only logs a failed server handshake at debug level and never calls the connection
    handler, so the count is taken where the handshake runs: in the context's SSLObject.
    """

    class _Counted(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError:
                stats["tls_refused"] += 1
                raise

    ctx.sslobject_class = _Counted


def _big_rcvbuf(sock: Any, size: int = 8 << 20) -> None:
    """Bursts overflow the default UDP receive buffer (~200 KB); force 8 MiB when allowed."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force or socket.SO_RCVBUF, size)
    except (OSError, AttributeError):
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def split_frames(buf: bytes) -> tuple[list[bytes], bytes]:
    """Split complete RFC 6587 frames (octet counting or newline) off; return them and the rest."""
    frames: list[bytes] = []
    pos, end = 0, len(buf)
    while pos < end:
        if 48 <= buf[pos] <= 57:  # a digit: octet counting, LEN SP MSG
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


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: SyslogServer, host: str | None = None) -> None:
        self.server = server
        self.host = host  # a local socket names its host; UDP uses the sender address

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peer = self.host if self.host is not None else str(addr[0])
        self.server.offer(data.rstrip(b"\r\n\x00"), peer)


class SyslogServer:
    """Asyncio syslog listener feeding an EventSink."""

    def __init__(self, sink: EventSink, config: SyslogConfig | None = None) -> None:
        self.sink = sink
        self.cfg = config or SyslogConfig()
        self.stats = self.cfg.stats
        self.normaliser = Normaliser("syslog")
        self.ports: dict[str, int] = {}
        # Items are the frames of one read (up to 64 KiB), so the bound is in reads, not messages.
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max(1, self.cfg.queue_size // 64))
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.Task[None] | None = None
        self._seq = 0
        self._handlers: set[asyncio.Task[Any]] = set()
        self._unix_transports: list[asyncio.BaseTransport] = []

    async def start(self) -> None:
        """Bind every enabled transport and start the writer."""
        loop = asyncio.get_running_loop()
        c = self.cfg
        try:
            if c.udp_port is not None:
                tr, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), (c.host, c.udp_port)
                )
                self._udp = tr
                _big_rcvbuf(tr.get_extra_info("socket"))
                self.ports["udp"] = tr.get_extra_info("sockname")[1]
            for path, host in c.unix_sockets.items():
                await self._unix(path, host)
            if c.tcp_port is not None:
                await self._listen("tcp", c.tcp_port, None)
            if c.tls_port is not None:
                if c.tls is None:
                    raise CollectorError("a TLS port needs a certificate (--tls-cert, --tls-key)")
                _count_refusals(c.tls, self.stats)
                await self._listen("tls", c.tls_port, c.tls)
        except OSError as exc:
            await self.stop()
            raise CollectorError(f"syslog: cannot listen on {c.host}: {exc}") from exc
        self._writer = asyncio.create_task(self._write_loop())

    async def _unix(self, path: str, host: str) -> None:
        """A datagram socket like /dev/log (e.g. inside a lab host's root), for local daemons."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o666)  # noqa: S103 - /dev/log must be writable by every local daemon
        _big_rcvbuf(sock)
        tr, _ = await loop.create_datagram_endpoint(lambda: _Udp(self, host), sock=sock)
        self._unix_transports.append(tr)
        self.ports[f"unix:{path}"] = 0

    async def _listen(self, name: str, port: int, tls: ssl.SSLContext | None) -> None:
        srv = await asyncio.start_server(
            self._handle, self.cfg.host, port, ssl=tls, limit=self.cfg.max_message * 2
        )
        self._servers.append(srv)
        self.ports[name] = srv.sockets[0].getsockname()[1]

    def offer(self, data: bytes, peer: str) -> None:
        """Queue a UDP datagram without blocking; count it as dropped if the queue is full."""
        self.stats["received"] += 1
        try:
            self._queue.put_nowait(([data], peer, time.time()))
        except asyncio.QueueFull:
            self.stats["dropped_udp"] += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if writer.get_extra_info("ssl_object") is not None:
            self.stats["tls_accepted"] += 1
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                frames, buf = split_frames(buf + data)
                if len(buf) > self.cfg.max_message * 2:
                    self.stats["framing_errors"] += 1
                    frames.append(buf)
                    buf = b""
                if frames:
                    await self._put(frames, peer)
            if buf.strip():
                await self._put([buf.rstrip(b"\r\n")], peer)
        except (ConnectionError, ssl.SSLError):
            self.stats["connection_errors"] += 1
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _put(self, frames: list[bytes], peer: str) -> None:
        """Queue the frames of one read; waits while the queue is full (TCP backpressure)."""
        self.stats["received"] += len(frames)
        await self._queue.put((frames, peer, time.time()))

    def _normalise(self, item: tuple[list[bytes], str, float]) -> list[Event]:
        frames, peer, t = item
        received = datetime.fromtimestamp(t, UTC)
        rt = repr(t)
        out: list[Event] = []
        for data in frames:
            self._seq += 1
            out += self.normaliser.line(
                data.decode("utf-8", "replace"),
                id_parts=(peer, rt, self._seq),
                received=received,
                peer=peer,
            )
        return out

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            batch: list[Event] = []
            try:
                item = await asyncio.wait_for(self._queue.get(), self.cfg.audit_idle)
            except TimeoutError:
                item = None
                batch = self.normaliser.flush()
            else:
                if item is None:
                    done = True
                else:
                    batch = self._normalise(item)
                while not done and len(batch) < self.cfg.batch and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        done = True
                    else:
                        batch += self._normalise(nxt)
            if done:
                batch += self.normaliser.flush()
            if batch:
                await loop.run_in_executor(None, self.sink.publish, batch)
                self.stats["published"] += len(batch)

    async def stop(self) -> None:
        """Stop listening, then publish everything already queued."""
        for srv in self._servers:
            srv.close()
        if self._handlers:  # let connected peers' data already sent be read, for a while
            _, late = await asyncio.wait(set(self._handlers), timeout=self.cfg.drain_timeout)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._udp:
            self._udp.close()
        for tr in self._unix_transports:
            tr.close()
        for path in self.cfg.unix_sockets:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if self._writer:
            await self._queue.put(None)
            await self._writer
            self._writer = None

    @property
    def raw_count(self) -> int:
        """Lines kept as raw events because no format matched."""
        return self.normaliser.stats["raw"]
