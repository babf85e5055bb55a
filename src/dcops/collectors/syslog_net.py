"""The syslog server's sockets: stream and datagram protocols, the TLS context, connection metrics.

A stream connection reads into one shared buffer (at most `READ_SIZE` bytes per recv), frames
what it read, hands the complete frames to the writer and stops reading until they are stored:
per connection, at most one read is in memory and not yet in the spool, and a slow spool pushes
back on the kernel's receive buffer, then on the sender. TLS connections take their data through
`CopiedReads`: asyncio's TLS layer then hands over all it decrypted at once, so nothing it read
ahead is left behind when the peer closes (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dcops.collectors.syslog_stream import Frame, StreamFramer
from dcops.errors import CollectorError

if TYPE_CHECKING:
    from dcops.collectors.syslog import SyslogServer
    from dcops.collectors.syslog_workers import WorkerCounters

READ_SIZE = 16 * 1024  # per recv: what one connection may have read and not yet stored


class StreamConn(asyncio.BufferedProtocol):
    """One TCP or TLS peer."""

    def __init__(self, server: SyslogServer, source: str) -> None:
        self.server, self.source = server, source
        self.framer = StreamFramer(server.cfg.max_message_bytes, server.cfg.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.waiting = False  # a read is with the writer; reading resumes once it is stored
        self.in_handshake = False  # TLS: admitted at accept, handshake running (TlsListener)
        self.on_handshake_end: Callable[[], None] | None = None  # the listener's count of them
        self.closed = False
        self.last = 0.0  # loop time of the last read (or of the last store, when waiting ended)

    def end_handshake(self) -> None:
        """The TLS handshake is over (done or failed): the listener stops counting it as pending,
        once; from now on only the server's open connections count it."""
        if self.in_handshake:
            self.in_handshake = False
            if self.on_handshake_end is not None:
                self.on_handshake_end()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the peer (or refuse it over the connection limit)."""
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        # TLS: asyncio's SSL layer keeps its default read-ahead (ciphertext not yet decrypted,
        # lost with the process like kernel buffers). A read-buffer limit of 0 paused the socket
        # after every record, and a read ending inside a line then never resumed: the
        # connection stalled for good (found by scripts/bench/fuzz_intake.py).
        self.server.opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Every connection reads into the server's one buffer (filled and used synchronously)."""
        return self.server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """A recv into the shared buffer."""
        self.received(bytes(self.server.read_buffer[:nbytes]))

    def received(self, data: bytes) -> None:
        """Bytes read: frame them and hand the complete frames to the writer."""
        self.last = self.server.now()
        errors = self.framer.framing_errors
        frames = self.framer.feed(data)
        if self.framer.framing_errors != errors:
            self.server.stats["framing_errors"] += self.framer.framing_errors - errors
        if frames:
            self.waiting = True
            if self.transport is not None and not self.transport.is_closing():
                self.transport.pause_reading()
            self.server.submit_stream(self, frames)

    def stored(self) -> None:
        """The writer stored our last read: read again (unless the server holds us back)."""
        self.waiting = False
        self.last = self.server.now()
        if not self.closed:
            self.server.resume(self)

    def eof_received(self) -> bool | None:
        """The peer is done sending: close."""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """A last unterminated line is kept; half an octet-counted frame is malformed."""
        self.finish(error=exc is not None)

    def end_of_stream(self) -> tuple[list[Frame], int]:
        """The frames the framer completes at the end, and how many it had to give up."""
        return self.framer.close(), self.framer.malformed

    def finish(self, *, error: bool = False, abort: bool = False) -> None:
        """Close (once): keep what the framer completes, count what it cannot."""
        if self.closed:
            return
        self.closed = True
        frames, malformed = self.end_of_stream()
        if malformed:
            self.server.intake(self.source).dropped("malformed", malformed)
            self.server.stats["framing_errors"] += malformed
        if error:
            self.server.stats["connection_errors"] += 1
        if frames:
            self.server.submit_stream(None, frames, self.source, self.peer)
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        self.server.forget(self)


class CopiedReads(asyncio.Protocol):
    """A TLS connection's protocol: hands what the TLS layer decrypted to its StreamConn.

    With a BufferedProtocol, asyncio's TLS layer (3.11, sslproto) delivers one buffer per read;
    when the peer closes while the connection waits for the writer, its flush delivers one more
    buffer and drops the rest of the decrypted data: a forwarder's last messages before it hung
    up were lost (found by scripts/bench/fuzz_intake.py). With data_received it delivers all it
    holds in one call, at most its read-ahead (bounded by the TLS read-buffer limits).
    """

    def __init__(self, conn: StreamConn) -> None:
        self.conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit (or refuse) the peer."""
        self.conn.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Decrypted bytes."""
        self.conn.received(data)

    def eof_received(self) -> bool | None:
        """The peer is done sending."""
        return self.conn.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed."""
        self.conn.connection_lost(exc)

    def pause_writing(self) -> None:
        """The peer does not read what we send (RELP answers)."""
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        """It reads again."""
        self.conn.resume_writing()


class Datagrams(asyncio.DatagramProtocol):
    """UDP or a local datagram socket (/dev/log style): one message per datagram."""

    def __init__(self, server: SyslogServer, source: str, host: str | None = None) -> None:
        self.server, self.source = server, source
        self.host = host  # a local socket names its host; UDP uses the sender address

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Queue it, or count it dropped if this source's queue is full."""
        peer = self.host if self.host is not None else str(addr[0])
        self.server.submit_datagram(self.source, data, peer)


def count_refusals(ctx: ssl.SSLContext, stats: Counter[str]) -> None:
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


def big_rcvbuf(sock: Any, size: int = 8 << 20) -> None:
    """Bursts overflow the default UDP receive buffer (~200 KB); force 8 MiB when allowed."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force or socket.SO_RCVBUF, size)
    except (OSError, AttributeError):
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


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


class SyslogMetrics:
    """Connections of a syslog server, for /metrics beside IntakeMetrics (Collector); with
    `workers`, those of its TCP worker processes are added."""

    def __init__(self, server: SyslogServer, workers: WorkerCounters | None = None) -> None:
        self.server, self.workers = server, workers

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        s = Counter(self.server.stats)
        open_ = Counter(c.source for c in list(self.server.conns))
        if self.workers is not None:
            s.update(self.workers.stats())
            open_.update(self.workers.connections())
        g = GaugeMetricFamily("dcops_syslog_connections", "Open TCP/TLS/RELP connections",
                              labels=["source"])
        for src in ("syslog_tcp", "syslog_tls", "syslog_relp"):
            g.add_metric([src], open_.get(src, 0))
        yield g
        yield GaugeMetricFamily(
            "dcops_syslog_tls_handshakes", "TLS connections accepted, handshake in progress "
            "(they count against max_connections of the TLS listener)",
            value=sum(t.handshaking for t in self.server.tls_listeners))
        for name, key, doc in (
            ("dcops_syslog_connections_refused", "connections_refused",
             "Connections closed at accept (over their listener's max_connections, or "
             "stopping)"),
            ("dcops_syslog_connections_idle_closed", "idle_closed",
             "Connections closed after idle_timeout without data"),
            ("dcops_syslog_tls_handshakes_refused", "tls_refused",
             "TLS handshakes refused (no or untrusted client certificate, not TLS)"),
            ("dcops_syslog_framing_errors", "framing_errors",
             "TCP/TLS framing errors: octet counts beyond max_frame_bytes (read as lines), "
             "octet-counted frames cut short by the end of the connection"),
        ):
            yield CounterMetricFamily(name, doc, value=s.get(key, 0))
