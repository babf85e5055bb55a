"""The TLS port: connections count against the limit from TCP accept, handshake included.

With `loop.create_server(ssl=...)` asyncio runs the handshake before the protocol hears of the
connection, so a connection in handshake (or one that never sends a ClientHello) was invisible to
`max_connections` and cost ~80 KiB each until the handshake timeout. Here the listener accepts by
itself: over the TLS limit a connection is closed at once (counted refused); otherwise it takes a
slot, and `loop.connect_accepted_socket` runs the handshake (bounded by the handshake timeout).
The slot passes to the open connection when the handshake completes and is freed if it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from dcops.collectors.syslog_net import CopiedReads, StreamConn

if TYPE_CHECKING:
    from dcops.collectors.syslog import SyslogServer

log = logging.getLogger(__name__)
_ACCEPT_PAUSE = 0.1  # after EMFILE/ENFILE, like asyncio's own servers (which wait 1 s)


def listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket bound to host:port (0: a free port) and listening; OSError if it cannot."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


async def accept_one(server: SyslogServer, sock: socket.socket, label: str
                     ) -> socket.socket | None:
    """The next connection on a listening socket; None after a failure that passes (a peer
    gone before accept; EMFILE, ENFILE, ENOBUFS: counted, then a pause, and serving goes on)."""
    try:
        peer, _ = await asyncio.get_running_loop().sock_accept(sock)
    except (ConnectionAbortedError, InterruptedError):
        return None
    except OSError as exc:
        log.warning("syslog %s: accept failed (%s); retrying", label, exc)
        server.stats["accept_errors"] += 1
        await asyncio.sleep(_ACCEPT_PAUSE)
        return None
    return peer


class TlsListener:
    """Accepts on the TLS port and runs each handshake as its own task."""

    def __init__(
        self, server: SyslogServer, ctx: ssl.SSLContext,
        conn: Callable[[SyslogServer, str], StreamConn], source: str,
    ) -> None:
        self.server, self.ctx, self.conn, self.source = server, ctx, conn, source
        self.sock: socket.socket | None = None
        self.port = 0
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._pending = 0  # accepted, handshake not over: counted against the limit

    def listen(self, host: str, port: int, backlog: int) -> int:
        """Bind and listen; returns the port."""
        sock = listen_socket(host, port, backlog)
        sock.setblocking(False)
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self._accepting = asyncio.get_running_loop().create_task(self._accept())
        return self.port

    @property
    def handshaking(self) -> int:
        """Connections accepted whose handshake is not over. A connection leaves this count
        the moment the server counts it open (not when its task ends), so it is never counted
        twice against `max_connections`."""
        return self._pending

    def _handshake_ended(self) -> None:
        self._pending -= 1

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.sock is not None
        while True:
            peer = await accept_one(self.server, self.sock, "TLS")
            if peer is None:
                continue
            if not self.server.admit(self.source, pending=self.handshaking):
                with contextlib.suppress(OSError):
                    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                peer.close()
                continue
            task = loop.create_task(self._handshake(peer))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, peer: socket.socket) -> None:
        """The handshake; on success the protocol's connection_made has admitted the peer."""
        loop = asyncio.get_running_loop()
        conn = self.conn(self.server, self.source)
        conn.in_handshake, conn.on_handshake_end = True, self._handshake_ended
        self._pending += 1
        try:
            await loop.connect_accepted_socket(
                lambda: CopiedReads(conn), peer, ssl=self.ctx,
                ssl_handshake_timeout=self.server.cfg.tls_handshake_timeout)
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
            # refused certificate, not TLS, timeout, peer gone: asyncio closed the socket
            log.debug("syslog TLS handshake failed: %s", exc)
            with contextlib.suppress(OSError):
                peer.close()
        finally:
            conn.end_handshake()  # failed or cancelled: no longer pending (a no-op once open)

    async def close(self) -> None:
        """Stop accepting and abandon the handshakes in progress."""
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        for task in list(self._handshakes):
            task.cancel()
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)
        if self.sock is not None:
            self.sock.close()
