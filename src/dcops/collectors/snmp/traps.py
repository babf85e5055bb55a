"""SNMP trap and inform receiver (v1, v2c, v3 USM): each notification becomes an event.

The socket is bound before anything else (a busy port is a clear startup error) and its receive
buffer is forced large (SO_RCVBUFFORCE) so a 10,000-trap burst waits in the kernel, not on the
floor. Malformed packets are counted and dropped; nothing a sender does can stop the receiver.
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

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import Decoded, EngineState, decode, encode_community, encode_v3
from dcops.collectors.snmp.trapevents import FlapTracker, TrapStats, trap_event
from dcops.collectors.snmp.trapmap import TrapType
from dcops.collectors.snmp.usm import UnknownUserError, UsmError, UsmUser
from dcops.errors import CollectorError
from dcops.model.event import Event
from dcops.model.sinks import EventSink
from dcops.model.site import Device

log = logging.getLogger(__name__)

RCVBUF = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
UNKNOWN_ENGINE_IDS = "1.3.6.1.6.3.15.1.1.4.0"
NOT_IN_TIME_WINDOWS = "1.3.6.1.6.3.15.1.1.2.0"
TIME_WINDOW = 150  # seconds, RFC 3414 section 3.2 step 7


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        peer = (str(addr[0]), int(addr[1]))
        reply = self.rx.handle(data, peer)
        if reply is None or self.transport is None:
            return
        if self.rx.last_was_inform:  # acknowledged once its event is durable (at-least-once)
            self.rx.acks.append((reply, peer))
        else:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        self.rx.stats.count("socket_error")


class TrapReceiver:
    """Decodes notifications, acknowledges informs, publishes events in batches."""

    def __init__(self, host: str, port: int, *, communities: Sequence[str] = (),
                 users: Sequence[UsmUser] = (), devices: Sequence[Device] = (),
                 trap_map: dict[str, TrapType] | None = None, sink: EventSink | None = None,
                 flap_window: float = 60.0, flap_threshold: int = 4,
                 rcvbuf: int = RCVBUF, allow_any_community: bool = False) -> None:
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
        self.flaps = FlapTracker(flap_window, flap_threshold)
        self.stats = TrapStats(self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        self.engine = EngineState(bytes.fromhex("80001f8804") + b"dcops-" + socket.gethostname()
                                  .encode()[:20], 1, 0, time.monotonic())
        self.pending: list[Event] = []
        self.acks: list[tuple[bytes, tuple[str, int]]] = []  # inform responses awaiting flush
        self.last_was_inform = False
        self._proto: _Proto | None = None
        self.events: list[Event] | None = None  # set to a list to keep events in memory (tests)

    def _etime(self) -> int:
        return int(time.monotonic() - self.engine.learnt_at)

    def handle(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        """Process one datagram; return the reply to send (inform ack, v3 report) or None."""
        self.last_was_inform = False
        try:
            msg = decode(data, users=self.users)
        except UsmError as exc:  # unknown user, wrong auth or priv key
            self.stats.refuse("unknown_user" if isinstance(exc, UnknownUserError) else "usm")
            log.debug("trap from %s:%s refused: %s", *addr, exc)
            return None
        except (ber.BerError, IndexError, ValueError, TypeError) as exc:
            self.stats.count("malformed")
            log.debug("malformed packet from %s:%s: %s", *addr, exc)
            return None
        pdu = msg.pdu
        if msg.version == 3:
            reply = self._v3_control(msg.msg_id, msg.flags, msg.user_name, msg.engine, pdu)
            if reply is not None or pdu.pdu_type not in (ber.TRAP_V2, ber.INFORM):
                return reply
        why = self._refusal(msg)
        if why:
            self.stats.refuse(why)
            log.debug("trap from %s:%s refused: %s", *addr, why)
            return None
        if pdu.pdu_type not in (ber.TRAP_V1, ber.TRAP_V2, ber.INFORM):
            self.stats.count("unexpected_pdu")
            return None
        version = {0: "1", 1: "2c", 3: "3"}[msg.version]
        self.stats.received(version, pdu.pdu_type == ber.INFORM)
        self._accept(data, addr, version, msg.user_name.decode(errors="replace"), pdu)
        self.last_was_inform = pdu.pdu_type == ber.INFORM
        return self._ack(msg) if self.last_was_inform else None

    def _refusal(self, msg: Decoded) -> str:
        """Why a notification is refused ("" = accepted).

        v3: a known user at its configured level or better. v1/v2c: a configured community; with
        none configured, only where the inventory allows v2c (the lab), never by default.
        """
        if msg.version == 3:
            user = self.users.get(msg.user_name)
            if user is None:
                return "unknown_user"
            return "security_level" if user.flags & ~msg.flags & 3 else ""
        if self.communities:
            return "" if msg.community in self.communities else "unknown_community"
        return "" if self.allow_any_community else "v1v2c_not_allowed"

    def _ack(self, msg: Decoded) -> bytes:
        """The Response that acknowledges an inform."""
        pdu = msg.pdu
        resp = ber.enc_response(pdu.request_id, pdu.varbinds)
        if msg.version == 3:
            user = self.users.get(msg.user_name)
            return encode_v3(msg.msg_id, user, self.engine, self._etime(), resp,
                             msg.context_name, reportable=False,
                             context_engine_id=msg.context_engine_id)
        return encode_community(msg.version, msg.community, resp)

    def _v3_control(self, msg_id: int, flags: int, user_name: bytes, engine: EngineState | None,
                    pdu: ber.Pdu) -> bytes | None:
        """Discovery and time-window reports where this receiver is authoritative (informs)."""
        assert engine is not None
        is_inform = pdu.pdu_type == ber.INFORM
        if not (flags & 4) or (pdu.pdu_type == ber.TRAP_V2):
            return None
        if engine.engine_id != self.engine.engine_id:
            self.stats.count("v3_discovery")
            report = ber.enc_response(pdu.request_id, [(UNKNOWN_ENGINE_IDS, ber.Value(
                ber.COUNTER32, self.stats.discoveries))], ber.REPORT)
            return encode_v3(msg_id, None, self.engine, self._etime(), report, reportable=False)
        if is_inform and (engine.boots != self.engine.boots
                          or abs(engine.time - self._etime()) > TIME_WINDOW):
            self.stats.count("not_in_time_window")
            report = ber.enc_response(pdu.request_id, [(NOT_IN_TIME_WINDOWS, ber.Value(
                ber.COUNTER32, 1))], ber.REPORT)
            user = self.users.get(user_name)
            if user is not None and user.priv_protocol:  # reports go authNoPriv at most
                user = UsmUser(user.name, user.auth_protocol, user.auth_password)
            return encode_v3(msg_id, user, self.engine, self._etime(), report, reportable=False)
        return None

    def _accept(self, data: bytes, addr: tuple[str, int], version: str, user: str,
                pdu: ber.Pdu) -> None:
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
                return
            if verdict == "start":
                event.fields["event.action"] = "interface-flapping"
                event.fields["event.severity_label"] = "warning"
                event.fields["message"] = (f"{event.fields.get('interface.name') or key[1]} on "
                                           f"{event.fields.get('observer.name') or addr[0]} is "
                                           f"flapping ({trap}); further link traps suppressed")
        self.stats.count("events")
        self.pending.append(event)
        if self.events is not None:
            self.events.append(event)

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.pending or self.acks:
            if self.pending or self.acks:
                batch, self.pending = self.pending, []
                acks, self.acks = self.acks, []
                try:
                    if self.sink is not None and batch:
                        await asyncio.to_thread(self.sink.publish, batch)
                except Exception:  # the sink failing must not lose the batch
                    log.exception("event sink failed; retrying in 1 s")
                    self.pending[:0] = batch
                    self.acks[:0] = acks
                    await asyncio.sleep(1.0)
                else:
                    self._send_acks(acks)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    def _send_acks(self, acks: list[tuple[bytes, tuple[str, int]]]) -> None:
        transport = self._proto.transport if self._proto is not None else None
        if transport is None:
            return
        for reply, peer in acks:
            transport.sendto(reply, peer)
            self.stats.count("inform_acked")

    async def serve(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set, then flush the remaining events."""
        loop = asyncio.get_running_loop()
        proto = self._proto = _Proto(self)
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, sock=self.sock)
        try:
            await self._flush_loop(stop)
        finally:
            transport.close()

    def run_forever(self) -> None:
        """Serve until SIGINT/SIGTERM."""
        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        asyncio.run(main())

    def close(self) -> None:
        """Release the socket."""
        self.sock.close()
