"""Syslog server: RFC 3164 and RFC 5424 over UDP, TCP (octet counting or newline framing), TLS
and RELP (acknowledged, rsyslog omrelp).

The event loop only accepts, reads and frames (syslog_net, syslog_stream, syslog_relp); a parse
thread and a commit thread store (syslog_writer, syslog_commit). A stream connection is read again
only once its last read (at most `read_bytes`, 16 KiB by default) is in the sink, so a SIGKILL
loses at most that read and a frame not yet complete, never anything read before; a slow sink
pushes back on the kernel buffers, then the sender. RELP answers a message only once it is
stored. UDP has no flow control: datagrams beyond a source's queue are dropped and counted
(`queue_full`). A message longer than `max_message_bytes` is cut there and stored marked
(log.truncated, log.original_size). Stop is bounded: `stop_timeout` seconds whatever the peers
or the sink do. TCP may be received by several processes sharing one listening socket
(`shared_tcp`, new connections to the least loaded: syslog_balance; see
dcops.cli.collect_syslog_workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass, field

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES, IntakeMetrics, SourceStats, clip
from dcops.collectors.parsers import Normaliser
from dcops.collectors.syslog_accept import TlsListener
from dcops.collectors.syslog_balance import SharedListener
from dcops.collectors.syslog_net import (
    READ_SIZE,
    Datagrams,
    StreamConn,
    SyslogMetrics,
    big_rcvbuf,
    count_refusals,
    server_tls_context,
)
from dcops.collectors.syslog_relp import RelpConn
from dcops.collectors.syslog_stream import DEFAULT_MAX_FRAME, Frame, split_frames
from dcops.collectors.syslog_writer import Item, Writer
from dcops.errors import CollectorError
from dcops.model.sinks import EventSink

__all__ = ["SyslogConfig", "SyslogMetrics", "SyslogServer", "server_tls_context", "split_frames"]

log = logging.getLogger(__name__)
_QUIET = 0.2  # on stop, a peer that sent nothing for this long is closed


@dataclass(slots=True)
class SyslogConfig:
    """Where and how the server listens; a port of None disables that transport, 0 picks one."""

    host: str = "127.0.0.1"
    udp_port: int | None = 514
    tcp_port: int | None = 514
    tls_port: int | None = None
    tls: ssl.SSLContext | None = None
    relp_port: int | None = None  # RELP (rsyslog omrelp): answered once stored
    unix_sockets: dict[str, str] = field(default_factory=dict)  # socket path -> host name
    queue_size: int = 10_000  # messages read and not yet stored, per source
    batch: int = 2_000  # messages per spool transaction at most
    cycle: float = 0.05  # seconds of parsing per spool transaction at most
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # longer messages are cut and marked
    max_frame_bytes: int = DEFAULT_MAX_FRAME  # larger octet counts are read as newline-framed
    listen_backlog: int = 4096  # TCP/TLS connections the kernel queues before accept
    # TCP worker processes: a listening socket they all hold (instead of tcp_port) and their
    # open-connection counts, so that each new connection goes to the least loaded one
    shared_tcp: socket.socket | None = None
    tcp_loads: MutableSequence[int] | None = None
    worker: int = 0  # this process's slot in tcp_loads
    read_bytes: int = READ_SIZE  # per recv of a stream connection: read, not yet stored, at most
    max_connections: int = 2048  # per listener (TCP, TLS, RELP); more are accepted and closed
    idle_timeout: float = 300.0  # seconds a peer may stay silent before it is closed
    tls_handshake_timeout: float = 10.0
    audit_idle: float = 1.0  # seconds after which held-back audit records are flushed
    drain_timeout: float = 2.0  # on stop, seconds to keep reading from peers still sending
    stop_timeout: float = 3.0  # on stop, seconds until stop() returns whatever the sink does
    stats: Counter[str] = field(default_factory=Counter)


# asyncio gives every TLS connection a 256 KiB read buffer from the moment it is accepted, before
# the handshake: 1,000 silent connections to the TLS port cost ~290 MiB. Two TLS records (16 KiB
# each, plus overhead) are enough to read with; reads just come in smaller pieces.
TLS_READ_BUFFER = 40 * 1024


def _small_tls_buffers() -> None:
    """Shrink asyncio's per-connection TLS read buffer for this process (a dedicated collector)."""
    import asyncio.sslproto

    asyncio.sslproto.SSLProtocol.max_size = min(asyncio.sslproto.SSLProtocol.max_size,
                                                TLS_READ_BUFFER)


class SyslogServer:
    """Asyncio syslog listener feeding an EventSink through one writer thread."""

    def __init__(
        self, sink: EventSink, config: SyslogConfig | None = None,
        metrics: IntakeMetrics | None = None,
    ) -> None:
        self.sink = sink
        self.cfg = config or SyslogConfig()
        self.stats = self.cfg.stats
        self.metrics = metrics or IntakeMetrics()
        self.ports: dict[str, int] = {}
        self.read_buffer = memoryview(bytearray(self.cfg.read_bytes))
        self.conns: set[StreamConn] = set()
        self.open_by: Counter[str] = Counter()  # open connections per source
        self.tls_listeners: list[TlsListener] = []
        self.shared_tcp: SharedListener | None = None  # TCP worker: the port all workers hold
        self.clean = True  # False when stop() gave up on messages the sink never took
        self._held: list[StreamConn] = []  # waiting for their source's queue to go down
        self._servers: list[asyncio.Server] = []
        self._datagrams: list[asyncio.BaseTransport] = []
        self._writer: Writer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._stopping = False
        self._last_datagram = 0.0

    @property
    def normaliser(self) -> Normaliser:
        """The writer's normaliser (parse statistics)."""
        assert self._writer is not None, "start() first"
        return self._writer.normaliser

    @property
    def raw_count(self) -> int:
        """Lines kept as raw events because no format matched."""
        return self.normaliser.stats["raw"]

    @property
    def unstored(self) -> int:
        """Messages read and not (yet) stored."""
        return sum(self._writer.depth.values()) if self._writer is not None else 0

    def intake(self, source: str) -> SourceStats:
        """The health counters of one source (syslog_udp, syslog_tcp, syslog_tls, syslog_unix)."""
        return self.metrics.source(source)

    def now(self) -> float:
        """The loop's clock."""
        assert self._loop is not None
        return self._loop.time()

    async def start(self) -> None:
        """Bind every enabled transport and start the writer."""
        loop = self._loop = asyncio.get_running_loop()
        c = self.cfg
        writer = self._writer = Writer(self.sink, self.metrics, loop, batch=c.batch,
                                       cycle=c.cycle, idle=c.audit_idle, legacy=self.stats,
                                       max_chars=c.max_message_bytes)
        try:
            if c.udp_port is not None:
                tr, _ = await loop.create_datagram_endpoint(
                    lambda: Datagrams(self, "syslog_udp"), (c.host, c.udp_port)
                )
                self._datagrams.append(tr)
                big_rcvbuf(tr.get_extra_info("socket"))
                self.ports["udp"] = tr.get_extra_info("sockname")[1]
                self._watch("syslog_udp")
            for path, host in c.unix_sockets.items():
                await self._unix(path, host)
            if c.shared_tcp is not None and c.tcp_loads is not None:
                self.shared_tcp = SharedListener(self, c.shared_tcp, c.tcp_loads, c.worker)
                self.shared_tcp.start()
                self.ports["tcp"] = self.shared_tcp.port
                self._watch("syslog_tcp")
            elif c.tcp_port is not None:
                await self._listen("tcp", c.tcp_port, None)
            if c.relp_port is not None:
                await self._listen("relp", c.relp_port, None)
            if c.tls_port is not None:
                if c.tls is None:
                    raise CollectorError("a TLS port needs a certificate (--tls-cert, --tls-key)")
                count_refusals(c.tls, self.stats)
                await self._listen("tls", c.tls_port, c.tls)
        except OSError as exc:
            await self.stop()
            raise CollectorError(f"syslog: cannot listen on {c.host}: {exc}") from exc
        writer.start(self._on_stored)
        self._sweeper = loop.create_task(self._sweep())

    def _watch(self, source: str) -> None:
        st, w = self.intake(source), self._writer
        assert w is not None
        st.queue_depth = lambda: w.depth[source]
        st.queue_capacity = self.cfg.queue_size
        st.oldest_unstored = lambda: w.oldest(source)

    async def _unix(self, path: str, host: str) -> None:
        """A datagram socket like /dev/log (e.g. inside a lab host's root), for local daemons."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o666)  # noqa: S103 - /dev/log must be writable by every local daemon
        big_rcvbuf(sock)
        tr, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(self, "syslog_unix", host), sock=sock
        )
        self._datagrams.append(tr)
        self.ports[f"unix:{path}"] = 0
        self._watch("syslog_unix")

    async def _listen(self, name: str, port: int, tls: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        source = f"syslog_{name}"
        conn = RelpConn if name == "relp" else StreamConn
        if tls is not None:
            _small_tls_buffers()
            listener = TlsListener(self, tls, conn, source)
            self.tls_listeners.append(listener)
            self.ports[name] = listener.listen(self.cfg.host, port, self.cfg.listen_backlog)
        else:
            srv = await loop.create_server(lambda: conn(self, source), self.cfg.host, port,
                                           backlog=self.cfg.listen_backlog)
            self._servers.append(srv)
            self.ports[name] = srv.sockets[0].getsockname()[1]
        self._watch(source)

    # -- called by the protocols, on the loop ------------------------------------------------

    def admit(self, source: str, pending: int = 0) -> bool:
        """May one more connection of `source` open? (Its own limit: a flood of plain TCP
        connections never locks out TLS or RELP forwarders.) Counts the refusal if not."""
        if self._stopping or self.open_by[source] + pending >= self.cfg.max_connections:
            self.stats["connections_refused"] += 1
            return False
        return True

    def opened(self, conn: StreamConn) -> None:
        """Admit a connection, or close it at once over `max_connections` or while stopping.

        A TLS connection was admitted at TCP accept (TlsListener), before its handshake.
        """
        assert conn.transport is not None
        if conn.in_handshake:  # admitted at accept; from here on counted as open, not pending
            conn.end_handshake()
            ok = not self._stopping
            self.stats["connections_refused"] += not ok
        else:
            ok = self.admit(conn.source)
        if not ok:
            conn.closed = True
            conn.transport.abort()
            return
        self.conns.add(conn)
        self.open_by[conn.source] += 1
        if self.shared_tcp is not None and conn.source == "syslog_tcp":
            self.shared_tcp.sync()
        conn.last = self.now()
        if conn.source == "syslog_tls":
            self.stats["tls_accepted"] += 1

    def forget(self, conn: StreamConn) -> None:
        """A connection closed."""
        if conn in self.conns:
            self.conns.discard(conn)
            self.open_by[conn.source] -= 1
            if self.shared_tcp is not None and conn.source == "syslog_tcp":
                self.shared_tcp.sync()

    def _count(self, source: str, frames: list[Frame]) -> list[Frame]:
        st = self.intake(source)
        kept = [f for f in frames if f.data]
        if len(kept) < len(frames):  # an empty octet-counted frame ("0 ")
            st.dropped("malformed", len(frames) - len(kept))
        cut = sum(f.truncated for f in kept)
        st.received(len(kept))
        self.stats["received"] += len(kept)
        if cut:
            st.truncated(cut)
            self.stats["truncated"] += cut
        return kept

    def submit_stream(
        self, conn: StreamConn | None, frames: list[Frame], source: str = "", peer: str = ""
    ) -> None:
        """Hand the frames of one read to the writer; `conn` reads again once they are stored."""
        assert self._writer is not None
        src = conn.source if conn is not None else source
        kept = self._count(src, frames)
        if not kept:
            if conn is not None:
                conn.stored()
            return
        done = conn.stored if conn is not None else None
        self._writer.put(Item(src, conn.peer if conn else peer, time.time(), kept, done))

    def submit_datagram(self, source: str, data: bytes, peer: str) -> None:
        """Queue one datagram, cut at the cap; a full queue drops it (counted)."""
        assert self._writer is not None
        self._last_datagram = self.now()
        size = len(data)
        data, cut = clip(data, self.cfg.max_message_bytes)
        frames = self._count(source, [Frame(data.rstrip(b"\r\n\x00"), size, cut)])
        if frames and not self._writer.put(
            Item(source, peer, time.time(), frames), self.cfg.queue_size
        ):
            self.intake(source).dropped("queue_full")
            self.stats["dropped_udp"] += 1

    def resume(self, conn: StreamConn) -> None:
        """Let a connection read again, unless its source already holds a full queue."""
        assert self._writer is not None
        assert conn.transport is not None
        if self._writer.depth[conn.source] >= self.cfg.queue_size:
            conn.waiting = True
            self._held.append(conn)
        elif not conn.transport.is_closing():
            conn.transport.resume_reading()

    def _on_stored(self, acks: list[Callable[[], None]]) -> None:
        for done in acks:
            done()
        held, self._held = self._held, []
        for conn in held:
            if not conn.closed:
                conn.waiting = False
                conn.last = self.now()
                self.resume(conn)

    async def _sweep(self) -> None:
        """Close connections silent for longer than `idle_timeout`."""
        period = max(0.05, min(self.cfg.idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            now = self.now()
            for conn in list(self.conns):
                if not conn.waiting and now - conn.last > self.cfg.idle_timeout:
                    self.stats["idle_closed"] += 1
                    conn.finish()

    # -- shutdown -----------------------------------------------------------------------------

    def hurry(self) -> None:
        """A second stop request: end reading now and give the writer only a moment more."""
        self._hurry.set()

    async def stop(self) -> bool:
        """Stop accepting, read what peers still send (briefly), store it; bounded in time.

        Returns False if the sink did not take everything before `stop_timeout` (or `hurry`).
        """
        loop = asyncio.get_running_loop()
        self._loop = self._loop or loop
        c, t0 = self.cfg, loop.time()
        self._stopping = True
        for srv in self._servers:
            srv.close()
        for listener in self.tls_listeners:
            await listener.close()
        if self.shared_tcp is not None:
            await self.shared_tcp.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self._drain(t0 + min(c.drain_timeout, c.stop_timeout / 2))
        for tr in self._datagrams:
            tr.close()
        for path in c.unix_sockets:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if self._writer is not None and self._writer.started:
            await self._flush(t0 + c.stop_timeout)
        return self.clean

    async def _drain(self, until: float) -> None:
        """Keep reading from peers still sending until `until`; close the quiet ones."""
        loop = asyncio.get_running_loop()
        while loop.time() < until and not self._hurry.is_set():
            now = loop.time()
            for conn in list(self.conns):
                if not conn.waiting and now - conn.last > _QUIET:
                    conn.finish()
            if not self.conns and now - self._last_datagram > _QUIET:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), 0.05)
        for conn in list(self.conns):
            conn.finish(abort=True)

    async def _flush(self, deadline: float) -> None:
        """Let the writer store everything read, until `deadline` (0.25 s more once hurried)."""
        loop, w = asyncio.get_running_loop(), self._writer
        assert w is not None
        w.stop()
        hurried = False
        while not w.finished.is_set() and loop.time() < deadline:
            if self._hurry.is_set() and not hurried:
                hurried, deadline = True, min(deadline, loop.time() + 0.25)
            await asyncio.sleep(0.01)
        if not w.finished.is_set():
            w.abandon()
            await asyncio.sleep(0.1)
            self.clean = w.finished.is_set() and self.clean
            if not self.clean:
                log.error("syslog: stopped before the sink took every message read")
