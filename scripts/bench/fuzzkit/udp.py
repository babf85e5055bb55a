"""UDP paths (traps, syslog UDP): paced hostile datagrams with numbered canaries in between.

Over UDP dcops can only store what the kernel queued for it. Pacing keeps the collector's
socket queue (from /proc/net/udp) and, when it exposes one, its in-memory intake queue
(`dcops_intake_queue_depth` / `_capacity`) well below full, so no datagram has to be dropped.
Loopback delivery happens inside sendto, so reading the socket's kernel drop counter just before
and after a canary's sendto tells whether the kernel dropped that canary; such a canary is
recorded as a kernel drop (reported separately, never hidden) and a fresh one is sent.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from fuzzkit.ledger import Ledger
from fuzzkit.procs import Collector, sample_sum, udp_socket

QUEUE_BYTES_LIMIT = 1 << 20  # kernel bytes queued (skb truesize) before the sender waits
STALL = 60.0  # seconds without the collector taking anything off a queue: it is stuck


class StalledError(Exception):
    """The collector stopped draining its queues."""


class Pacer:
    """Waits before the collector's queues get near full."""

    def __init__(self, port: int, collector: Collector, source: str, ledger: Ledger,
                 deadline: float) -> None:
        self.port, self.collector, self.source, self.ledger = port, collector, source, ledger
        self.deadline = deadline
        self.sent = 0
        self.waited = 0.0
        self._scraped = 0.0
        self.uses_intake_queue = False

    def gate(self) -> None:
        """Call after each datagram; checks the queues every 32 datagrams."""
        self.sent += 1
        if self.sent & 31:
            return
        t0 = moved = time.monotonic()
        low = udp_socket(self.port)[0]
        while low > QUEUE_BYTES_LIMIT:
            time.sleep(0.0005)
            q = udp_socket(self.port)[0]
            now = time.monotonic()
            if q < low:
                low, moved = q, now
            elif now - moved > STALL or not self.collector.alive():
                raise StalledError(f"its kernel queue held {q:,} bytes for {now - moved:.0f} s")
        if t0 - self._scraped > 0.05:
            self._intake_gate()
            self._scraped = time.monotonic()
        self.waited += time.monotonic() - t0

    def _intake_gate(self) -> None:
        moved, low = time.monotonic(), float("inf")
        while True:
            s = self.collector.scrape(2.0)
            depth = sample_sum(s, "dcops_intake_queue_depth", source=self.source)
            cap = sample_sum(s, "dcops_intake_queue_capacity", source=self.source)
            if depth is None or not cap:
                return
            self.uses_intake_queue = True
            if depth < cap / 4:
                return
            now = time.monotonic()
            if depth < low:
                low, moved = depth, now
            elif now - moved > STALL:
                raise StalledError(f"its intake queue held {depth:,.0f} of {cap:,.0f} for "
                              f"{now - moved:.0f} s")
            time.sleep(0.005)

    def drain(self, timeout: float = 30.0) -> None:
        """Until the kernel queue is empty."""
        deadline = time.monotonic() + timeout
        while udp_socket(self.port)[0] and time.monotonic() < deadline:
            time.sleep(0.01)


def send_canary(sock: socket.socket, port: int, pacer: Pacer, ledger: Ledger, path: str,
                make: Callable[[str, int], bytes]) -> None:
    """Send one canary on `path`; if the kernel dropped it, note it and send a fresh one."""
    for _ in range(5):
        n, mark = ledger.canary(path)
        before = udp_socket(port)[1]
        try:
            sock.send(make(mark, n))
        except OSError as exc:  # ICMP port unreachable: the collector is gone
            ledger.unsendable[path].add(n)
            ledger.notes.append(f"{path}: canary {n} not sent: {exc}")
            return
        ledger.confirm(path, n)
        if udp_socket(port)[1] == before:
            return
        ledger.kernel_dropped[path].add(n)
        pacer.drain()


def udp_socket_to(port: int) -> socket.socket:
    """A connected loopback UDP socket with a large send buffer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.connect(("127.0.0.1", port))
    return s


def blast(port: int, count: int, every: int, collector: Collector, source: str, ledger: Ledger,
          hostile: Callable[[], tuple[str, bytes]],
          canary: Callable[[socket.socket, Pacer], None], csock: socket.socket,
          deadline: float) -> Pacer:
    """Send `count` hostile datagrams, a canary (on `csock`) after every `every` of them."""
    pacer = Pacer(port, collector, source, ledger, deadline)
    sock = udp_socket_to(port)
    collector_name = collector.name
    errors = 0
    canary(csock, pacer)
    try:
        for i in range(1, count + 1):
            kind, data = hostile()
            try:
                sock.send(data)
            except OSError:  # ECONNREFUSED after an ICMP error, EMSGSIZE: counted, go on
                errors += 1
                if not collector.alive():
                    ledger.abort(source, f"collector gone after {i:,} datagrams")
                    break
                continue
            ledger.hostile[f"{collector_name}/{source}:{kind}"] += 1
            ledger.tick(source, i, count)
            try:
                pacer.gate()
            except StalledError as exc:
                ledger.abort(source, f"collector stuck after {i:,} of {count:,} inputs: {exc}")
                break
            if not i & 255 and time.monotonic() > deadline:
                ledger.abort(source, f"phase deadline reached after {i:,} of {count:,} inputs "
                             f"({pacer.waited:.0f} s waiting for the collector)")
                break
            if i % every == 0:
                canary(csock, pacer)
        canary(csock, pacer)
    finally:
        sock.close()
    if errors:
        ledger.notes.append(f"{source}: {errors} hostile datagrams refused by the local stack")
    return pacer
