"""TCP and TLS syslog paths: hostile streams, framing breakers, idle floods, slowloris, canaries.

Canaries travel on a dedicated connection opened before any flood and inside the hostile
connections (after hostile lines that keep newline framing intact). Inputs that break framing
on purpose (half octet-counted frames, 2 MiB lines, random bytes with digits) go on connections
of their own: RFC 6587 gives a receiver no way to resynchronise after them, so a canary behind
one on the same connection would be lost by the protocol, not by dcops.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable

from fuzzkit.ledger import Ledger
from fuzzkit.textgen import LineGen, syslog_canary

POOL = 4
FLUSH_AT = 64 * 1024


class RefusedError(OSError):
    """The server accepted the connection and closed it at once (over its connection limit)."""


class Conn:
    """A client connection (plain or TLS) that sends whole frames."""

    def __init__(self, port: int, tls: ssl.SSLContext | None, timeout: float = 30.0,
                 name: str = "") -> None:
        self.port, self.tls, self.timeout, self.name = port, tls, timeout, name
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.reconnects = 0

    def open(self) -> None:
        """Connect (and handshake)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if self.tls is not None:
            s = self.tls.wrap_socket(s, server_hostname="127.0.0.1")
        s.settimeout(self.timeout)
        self.sock = s

    def closed_by_peer(self) -> bool:
        """The server closed (or reset) this connection."""
        if self.sock is None:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            self.sock.setblocking(False)
            try:
                return self.sock.recv(4096) == b""
            finally:
                self.sock.setblocking(True)
                self.sock.settimeout(self.timeout)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True

    def admitted(self, tries: int = 5) -> None:
        """Connect until the server keeps the connection (it closes it at once when full)."""
        for k in range(tries):
            self.close(reset=False)
            with contextlib.suppress(OSError):
                self.open()
                time.sleep(0.05)
                if not self.closed_by_peer():
                    return
            time.sleep(0.2 * (k + 1))
        self.close(reset=False)
        raise RefusedError(f"{self.name}: {tries} connections in a row closed at once")

    def ensure(self) -> None:
        """Reconnect if the server closed this connection."""
        if self.closed_by_peer():
            self.admitted()
            self.reconnects += 1

    def flush(self) -> bool:
        """Send the buffer; False (buffer dropped) if the connection failed."""
        if not self.buf:
            return True
        data, self.buf = bytes(self.buf), bytearray()
        try:
            assert self.sock is not None
            self.sock.sendall(data)
        except (OSError, AssertionError):
            self.close(reset=True)  # ensure() reconnects before the next canary
            return False
        return True

    def close(self, reset: bool = False) -> None:
        """Close gracefully (FIN) or with a reset (RST)."""
        if self.sock is None:
            return
        with contextlib.suppress(OSError):
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif isinstance(self.sock, ssl.SSLSocket):
                self.sock.settimeout(1.0)
                self.sock.unwrap()
        with contextlib.suppress(OSError):
            self.sock.close()
        self.sock = None


def frame(msg: bytes, style: int) -> bytes:
    """RFC 6587 framing: newline, CRLF or octet counting."""
    if style == 0:
        return msg + b"\n"
    if style == 1:
        return msg + b"\r\n"
    return b"%d %s" % (len(msg), msg)


class StreamDriver:
    """One TCP or TLS port of `dcops collect syslog` under attack."""

    def __init__(self, port: int, tls: ssl.SSLContext | None, source: str, rng: random.Random,
                 lines: LineGen, ledger: Ledger) -> None:
        self.port, self.tls, self.source = port, tls, source
        self.rng, self.lines, self.ledger = rng, lines, ledger
        self.held: list[socket.socket | Conn] = []  # idle and slowloris: open through SIGTERM
        self.slow: list[tuple[socket.socket, bytes]] = []
        self.failures: dict[str, int] = {}

    def _count(self, kind: str, n: int = 1) -> None:
        self.ledger.hostile[f"syslog/{self.source}:{kind}"] += n

    def _fail(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1

    def canary(self, conn: Conn) -> None:
        """One numbered canary on `conn`, framed one of three ways."""
        for _ in range(3):
            try:
                conn.ensure()
            except OSError as exc:
                self._fail(f"canary connection ({type(exc).__name__})")
                n, _ = self.ledger.canary(self.source)
                self.ledger.unsendable[self.source].add(n)
                self.ledger.where[(self.source, n)] = f"not sent: {exc}"
                continue
            n, mark = self.ledger.canary(self.source)
            self.ledger.where[(self.source, n)] = (
                f"connection {conn.name} (reconnects {conn.reconnects}), framing "
                f"{('newline', 'CRLF', 'octet count')[n % 3]}, behind {len(conn.buf):,} bytes of "
                f"hostile lines in the same send")
            conn.buf += frame(syslog_canary(mark, n), n % 3)
            if conn.flush():
                self.ledger.confirm(self.source, n)
                return
            self.ledger.unsendable[self.source].add(n)

    def idle(self, n: int) -> None:
        """Open `n` connections that send nothing or half a line, and hold them."""
        for i in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                if i % 2:
                    s.send(b"<13>Nov 22 04:44:50 idle prog: half a line, never finished")
            except OSError:
                self._fail("idle connect")
                continue
            self.held.append(s)
            self._count("idle_connection")

    def slowloris(self, n: int) -> None:
        """Open `n` connections that will trickle one byte per tick."""
        for i in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.setblocking(False)
            except OSError:
                self._fail("slowloris connect")
                continue
            self.slow.append((s, b"65000 <13>" if i % 2 else b"<13>slow "))
            self.held.append(s)
            self._count("slowloris")

    def tick(self) -> None:
        """One byte more on every slowloris connection."""
        for s, head in self.slow:
            with contextlib.suppress(OSError):
                s.send(head[:1] if head else b"a")
        self.slow = [(s, head[1:]) for s, head in self.slow]

    def breaker(self) -> None:
        """A framing-breaking input on a connection of its own, closed or reset after it."""
        r = self.rng
        kinds: list[tuple[str, Callable[[], bytes]]] = [
            ("half_octet_frame", lambda: b"%d <13>Nov 22 04:44:50 h p: " % r.choice(
                (500, 65000, 10_000_000)) + r.randbytes(r.randint(0, 300))),
            ("huge_octet_count", lambda: r.choice((b"999999999 x", b"99999999999999999999 x",
                                                   b"-5 x\n", b"0 0 0 0 \n", b"1" * 30))),
            ("random_stream", lambda: r.randbytes(r.randint(1, 6000))),
            ("line_2mib", lambda: b"<13>Nov 22 04:44:50 h p: " + b"A" * (2 << 20)
             + (b"\n" if r.random() < 0.5 else b"")),
            ("carriage_returns", lambda: b"\r" * r.randint(1, 20000)),
        ]
        weights = (40, 20, 35, 1, 4)
        kind, make = r.choices(kinds, weights)[0]
        if self.tls is not None and r.random() < 0.4:
            self._not_tls()
            return
        c = Conn(self.port, self.tls, timeout=10)
        try:
            c.open()
            c.buf += make()
            c.flush()
        except OSError:
            self._fail(f"{kind} connect")
        c.close(reset=r.random() < 0.3)
        self._count(kind)

    def _not_tls(self) -> None:
        """Plain bytes, HTTP or a half ClientHello on the TLS port."""
        r = self.rng
        payloads = (b"<13>Nov 22 04:44:50 h p: plaintext on the TLS port\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc",
                    r.randbytes(r.randint(1, 3000)), b"\x16\x03\x03\xff\xff" + r.randbytes(200))
        kind = ("not_tls", "not_tls", "half_client_hello", "not_tls", "bad_record")[
            i := r.randrange(len(payloads))]
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(payloads[i])
        except OSError:
            self._fail("not_tls connect")
        self._count(kind)

    def one(self, i: int, pool: list[Conn], breaker_ratio: float) -> None:
        """Hostile input `i`: a line on a shared connection, or a framing breaker."""
        if self.rng.random() < breaker_ratio:
            self.breaker()
            return
        kind, data = self.lines.line(stream_safe=True)
        c = pool[i % POOL]
        c.buf += frame(data, 0 if i % 5 else 1)
        self._count(kind)
        if len(c.buf) > FLUSH_AT and not c.flush():
            self._fail("pool send")

    def connect(self) -> bool:
        """Open the canary and hostile connections, like forwarders connected before an attack."""
        self.main = Conn(self.port, self.tls, name="canary-only")
        self.pool = [Conn(self.port, self.tls, timeout=15, name=f"hostile-{k}")
                     for k in range(POOL)]
        for c in [self.main, *self.pool]:
            try:
                c.admitted()
            except OSError as exc:
                self.ledger.abort(self.source, f"cannot connect: {type(exc).__name__} {exc}")
                return False
        return True

    def run(self, count: int, every: int, idle_n: int, slow_n: int, deadline: float,
            breaker_ratio: float = 0.02) -> None:
        """Send `count` hostile inputs with canaries; idle and slowloris connections stay open."""
        if not hasattr(self, "main") and not self.connect():
            return
        main, pool = self.main, self.pool
        self.idle(idle_n // 2)
        self.slowloris(slow_n)
        next_tick = time.monotonic()
        self.canary(main)
        for i in range(1, count + 1):
            if i == count // 2:
                self.idle(idle_n - idle_n // 2)  # more idle connections in the middle of it
            self.one(i, pool, breaker_ratio)
            self.ledger.tick(self.source, i, count)
            if i % every == 0:
                if (i // every) % 2:
                    self.canary(main)
                else:
                    self.canary(pool[i % POOL])  # behind hostile lines on the same stream
            if time.monotonic() >= next_tick:
                self.tick()
                next_tick = time.monotonic() + 0.1
                if next_tick > deadline:
                    self.ledger.abort(self.source, f"phase deadline reached after {i:,} of "
                                      f"{count:,} inputs")
                    break
        for c in pool:
            if c.buf and (c.closed_by_peer() or not c.flush()):
                self._fail("pool send")
        self.canary(main)
        for c in [main, *pool]:
            c.close(reset=False)
        self.ledger.notes += [f"{self.source}: {n} x {what} failed" for what, n in
                              sorted(self.failures.items())]

    def release(self) -> None:
        """Close the held idle and slowloris connections."""
        for s in self.held:
            with contextlib.suppress(OSError):
                s.close()
        self.held.clear()
        self.slow.clear()
