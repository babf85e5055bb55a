"""SNMP trap and inform receiver (v1, v2c, v3 USM): each notification becomes an event.

The socket is bound before anything else (a busy port is a clear startup error) and its receive
buffer is forced large (SO_RCVBUFFORCE) so a 10,000-trap burst waits in the kernel, not on the
floor. Each datagram is judged before it is decoded (size, then community or v3 user, engine id
and HMAC; see trapwire and trapv3), decoded within caps, and its event queued until the sink has
made it durable (trapqueue). Malformed and refused packets are counted and dropped; nothing a
sender does can stop the receiver, and SIGTERM ends it within 5 s whatever the sink does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from typing import cast

from dcops.collectors.health import IntakeMetrics
from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import Decoded, EngineState, encode_community
from dcops.collectors.snmp.trapevents import FlapTracker, TrapStats, trap_event
from dcops.collectors.snmp.trapmap import TrapType
from dcops.collectors.snmp.trapqueue import (
    QUEUE_BYTES,
    QUEUE_CAPACITY,
    Flusher,
    Item,
    PendingQueue,
)
from dcops.collectors.snmp.trapv3 import V3Gate
from dcops.collectors.snmp.trapwire import Drop, Limits, decode_pdu, read_header
from dcops.collectors.snmp.usm import UsmUser
from dcops.errors import CollectorError
from dcops.model.event import INT64_MAX, INT64_MIN, Event
from dcops.model.sinks import EventSink
from dcops.model.site import Device

log = logging.getLogger(__name__)

RCVBUF = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SHUTDOWN_GRACE = 3.5  # seconds from SIGTERM to giving up on the sink (the exit budget is 5)
NOTIFICATIONS = (ber.TRAP_V1, ber.TRAP_V2, ber.INFORM)
DECODE_ERRORS = (ber.BerError, IndexError, ValueError, TypeError)


def users_from_devices(devices: Iterable[Device]) -> list[UsmUser]:
    """The v3 users of the inventory's devices (their Vault secrets), one per user name."""
    users: dict[str, UsmUser] = {}
    for d in devices:
        c = d.snmp
        if c is None or c.version != "3" or not c.user or c.user in users:
            continue
        users[c.user] = UsmUser(
            c.user, c.auth_protocol or "SHA" if c.auth_key else "",
            c.auth_key.reveal() if c.auth_key else "",
            (c.priv_protocol or "AES") if c.priv_key else "",
            c.priv_key.reveal() if c.priv_key else "")
    return list(users.values())


def bind_udp(host: str, port: int, rcvbuf: int = RCVBUF) -> socket.socket:
    """Bind the trap socket now, with a forced large receive buffer; busy port = CollectorError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (port below 1024 needs root or CAP_NET_BIND_SERVICE)" if port < 1024 else ""
        raise CollectorError(f"cannot receive traps on udp {host}:{port}: {exc.strerror}"
                             f"{hint}; is snmptrapd or another receiver running?") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except OSError:  # no CAP_NET_ADMIN: capped at net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    return sock


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, rx: TrapReceiver) -> None:
        self.rx = rx
        self.transport: asyncio.DatagramTransport | None = None
        self.receiving = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.receiving:  # shutting down: what is still in the kernel stays there
            return
        peer = (str(addr[0]), int(addr[1]))
        try:
            reply = self.rx.handle(data, peer)
        except Exception:  # a bug must cost one packet, never the receiver
            log.exception("trap from %s:%s could not be handled", *peer)
            self.rx.stats.count("internal_error")
            self.rx.istats.dropped("malformed")
            return
        if reply is not None and not self.rx.last_was_inform:  # informs: acked once durable
            self.rx.send(reply, peer)

    def error_received(self, exc: Exception) -> None:
        self.rx.stats.count("socket_error")


def _beyond_64_bits(pdu: ber.Pdu) -> str:
    """Why the event cannot hold this PDU's values as received ("" when it can)."""
    big = [oid for oid, v in pdu.varbinds
           if isinstance(v.value, int) and not INT64_MIN <= v.value <= INT64_MAX]
    if not big:
        return ""
    more = f" and {len(big) - 1} more" if len(big) > 1 else ""
    return f"integer beyond 64 bits in varbind {big[0][:200]}{more}, kept as a decimal string"


class TrapReceiver:
    """Judges and decodes notifications, queues their events, stores them, acknowledges informs."""

    def __init__(self, host: str, port: int, *, communities: Sequence[str] = (),
                 users: Sequence[UsmUser] = (), devices: Sequence[Device] = (),
                 trap_map: dict[str, TrapType] | None = None, sink: EventSink | None = None,
                 flap_window: float = 60.0, flap_threshold: int = 4,
                 rcvbuf: int = RCVBUF, allow_any_community: bool = False,
                 limits: Limits | None = None, intake: IntakeMetrics | None = None,
                 queue_capacity: int = QUEUE_CAPACITY, queue_bytes: int = QUEUE_BYTES) -> None:
        self.sock = bind_udp(host, port, rcvbuf)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.communities = {c.encode() for c in communities if c}
        # v1/v2c without a configured community is refused unless the inventory allows v2c (lab)
        self.allow_any_community = allow_any_community
        self.users = {u.name.encode(): u for u in users}
        by_addr: dict[str, list[str]] = {}
        for d in devices:
            by_addr.setdefault(d.address, []).append(d.name)
        self.device_by_addr = {a: n[0] for a, n in by_addr.items() if len(n) == 1}
        self.trap_map = trap_map or {}
        self.sink = sink
        self.limits = limits or Limits()
        self.flaps = FlapTracker(flap_window, flap_threshold)
        self.stats = TrapStats(self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                               self.flaps)
        self.intake = intake or IntakeMetrics()
        self.istats = self.intake.source("snmp_trap")
        self.queue = PendingQueue(queue_capacity, queue_bytes)
        self.istats.queue_depth = self.queue.depth
        self.istats.queue_capacity = queue_capacity
        self.istats.oldest_unstored = self.queue.oldest
        self.flusher = Flusher(self.queue, sink, self.istats, self._send_ack)
        self.engine = EngineState(bytes.fromhex("80001f8804") + b"dcops-" + socket.gethostname()
                                  .encode()[:20], 1, 0, time.monotonic())
        self.v3 = V3Gate(self.users, self.engine, self.limits, lambda: self.stats.discoveries)
        self.last_was_inform = False  # the last reply is an inform ack sent once stored
        self._proto: _Proto | None = None
        self.events: list[Event] | None = None  # set to a list to keep events in memory (tests)

    def handle(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        """Process one datagram; return the reply (inform ack, v3 report) or None.

        When `last_was_inform` is then True the reply is an inform ack that `flush` sends once
        the event is stored or dead-lettered; any other reply is for the caller to send now.
        """
        self.last_was_inform = False
        self.istats.received()
        try:
            msg = self._judge(data)
        except Drop as d:
            if d.kind == "auth":
                self.stats.refuse(d.why)
            else:
                self.stats.count(d.kind)
            self.istats.dropped(d.kind)
            log.debug("packet from %s:%s dropped (%s): %s", *addr, d.kind, d.why)
            return None
        if isinstance(msg, bytes):
            return msg
        return self._notification(data, addr, msg)

    def _judge(self, data: bytes) -> Decoded | bytes:
        """Size, then sender (community or v3 user, engine id, HMAC), then the PDU within caps.

        Returns the accepted message or a v3 report to send; raises Drop otherwise.
        """
        if len(data) > self.limits.max_message_bytes:
            raise Drop("too_large", f"{len(data)} bytes > {self.limits.max_message_bytes}")
        try:
            h = read_header(data)
        except DECODE_ERRORS as exc:
            raise Drop("malformed", str(exc)) from exc
        if h.version == 3:
            v = self.v3.check(data, h)
            if v.reply is not None:
                self.stats.count(v.outcome)
                return v.reply
            assert v.msg is not None
            return v.msg
        why = self._community_refusal(h.community)
        if why:
            raise Drop("auth", why)
        try:
            pdu = decode_pdu(data, h.pdu_pos, h.end, self.limits)
        except DECODE_ERRORS as exc:
            raise Drop("malformed", str(exc)) from exc
        return Decoded(h.version, pdu.request_id, pdu, community=h.community)

    def _community_refusal(self, community: bytes) -> str:
        """Why a v1/v2c notification is refused ("" = accepted).

        A configured community; with none configured, only where the inventory allows v2c (the
        lab), never by default.
        """
        if self.communities:
            return "" if community in self.communities else "unknown_community"
        return "" if self.allow_any_community else "v1v2c_not_allowed"

    def _notification(self, data: bytes, addr: tuple[str, int], msg: Decoded) -> bytes | None:
        pdu = msg.pdu
        if pdu.pdu_type not in NOTIFICATIONS:
            self.stats.count("unexpected_pdu")
            self.istats.dropped("malformed")
            return None
        version = {0: "1", 1: "2c", 3: "3"}[msg.version]
        inform = pdu.pdu_type == ber.INFORM
        self.stats.received(version, inform)
        reply = self._ack(msg) if inform else None
        outcome = self._accept(data, addr, version, msg.user_name.decode(errors="replace"), pdu,
                               reply)
        if outcome == "full":
            return None  # not stored: not acknowledged, the sender retries
        self.last_was_inform = inform and outcome == "queued"
        return reply

    def _ack(self, msg: Decoded) -> bytes:
        """The Response that acknowledges an inform."""
        pdu = msg.pdu
        resp = ber.enc_response(pdu.request_id, pdu.varbinds)
        if msg.version == 3:
            return self.v3.ack(msg, resp)
        return encode_community(msg.version, msg.community, resp)

    def _accept(self, data: bytes, addr: tuple[str, int], version: str, user: str,
                pdu: ber.Pdu, reply: bytes | None) -> str:
        """Queue the event: 'queued', 'suppressed' (flapping) or 'full' (counted, dropped)."""
        event = trap_event(data, addr, version, user, pdu, self.trap_map,
                           self.device_by_addr.get(addr[0], ""))
        trap = event.fields.get("snmp.trap.name", "")
        link = event.fields.get("snmp.trap.link", "")
        if link:
            key = (addr[0], str(event.fields.get("interface.id")
                                or event.fields.get("interface.name", "")))
            verdict = self.flaps.observe(key, time.monotonic())
            if verdict == "suppress":
                self.stats.count("suppressed_flapping")
                return "suppressed"
            if verdict == "start":
                event.fields["event.action"] = "interface-flapping"
                event.fields["event.severity_label"] = "warning"
                event.fields["message"] = (f"{event.fields.get('interface.name') or key[1]}"[:200]
                                           + f" on {event.fields.get('observer.name') or addr[0]}"
                                           f" is flapping ({trap}); further link traps suppressed")
        if not self.queue.offer(Item(event, time.time(), len(data),
                                     (reply, addr) if reply is not None else None,
                                     _beyond_64_bits(pdu))):
            self.stats.count("queue_full")
            self.istats.dropped("queue_full")
            return "full"
        self.stats.count("events")
        if self.events is not None:
            self.events.append(event)
        return "queued"

    def send(self, reply: bytes, peer: tuple[str, int]) -> bool:
        """Send a reply now (through the transport while serving, else the bound socket)."""
        transport = self._proto.transport if self._proto is not None else None
        try:
            if transport is not None and not transport.is_closing():
                transport.sendto(reply, peer)
            else:
                self.sock.sendto(reply, peer)
        except OSError:
            self.stats.count("reply_send_error")
            return False
        return True

    def _send_ack(self, reply: bytes, peer: tuple[str, int]) -> None:
        if self.send(reply, peer):
            self.stats.count("inform_acked")

    def flush(self) -> int:
        """Store one batch now (tests, tools); return the events kept for retry."""
        return self.flusher.flush_once()

    async def serve(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set, then store what is queued (unbounded: see run_forever)."""
        loop = asyncio.get_running_loop()
        proto = self._proto = _Proto(self)
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, sock=self.sock)

        async def stop_receiving() -> None:
            await stop.wait()
            proto.receiving = False
            with contextlib.suppress(AttributeError, RuntimeError):
                transport.pause_reading()  # type: ignore[attr-defined]

        stopper = asyncio.create_task(stop_receiving())
        try:
            await self.flusher.run(stop)
        finally:
            stopper.cancel()
            transport.close()

    def run_forever(self, grace: float = SHUTDOWN_GRACE) -> bool:
        """Serve until SIGINT/SIGTERM; True when every queued event was stored.

        The first signal stops receiving and stores what is queued; after `grace` seconds, or at a
        second signal, it gives up on what the sink has not taken (logged and counted) and returns.
        """
        async def main() -> bool:
            stop, hard = asyncio.Event(), asyncio.Event()
            loop = asyncio.get_running_loop()

            def on_signal() -> None:
                (hard if stop.is_set() else stop).set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            task = asyncio.create_task(self.serve(stop))
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            harder = asyncio.create_task(hard.wait())
            await asyncio.wait({task, harder}, timeout=grace,
                               return_when=asyncio.FIRST_COMPLETED)
            for t in (waiter, harder, task):
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            left = self.queue.depth()
            if left:
                log.error("trap receiver stopped with %d events not stored (sink unavailable); "
                          "informs among them were not acknowledged and will be resent",
                          left)
            return left == 0

        return asyncio.run(main())

    def close(self) -> None:
        """Release the socket."""
        self.sock.close()
