"""A lean asyncio SNMP client: one connected UDP socket per device, GET and multi-column GETBULK.

Each device owns its socket (no shared-socket drops between devices) and every request has its own
timeout and retry budget; nothing here retries forever.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import (
    Decoded,
    EngineState,
    decode,
    encode_community,
    encode_v3,
)
from dcops.collectors.snmp.usm import UsmError, UsmUser

USM_STATS = "1.3.6.1.6.3.15.1.1."
TOO_BIG, NO_SUCH_NAME = 1, 2
REPORT_REASONS = {
    "1.3.6.1.6.3.15.1.1.1.0": "unsupported security level",
    "1.3.6.1.6.3.15.1.1.2.0": "not in time window",
    "1.3.6.1.6.3.15.1.1.3.0": "unknown user name",
    "1.3.6.1.6.3.15.1.1.4.0": "unknown engine id",
    "1.3.6.1.6.3.15.1.1.5.0": "wrong digest (auth key)",
    "1.3.6.1.6.3.15.1.1.6.0": "decryption error (priv key)",
}


class SnmpError(Exception):
    """A request failed; `kind` is the error class used as a metric label."""

    def __init__(self, kind: str, message: str, status: int = 0, index: int = 0) -> None:
        super().__init__(message)
        self.kind = kind  # timeout, auth, decode, refused, agent
        self.status = status  # agent error-status (tooBig 1, noSuchName 2, ...)
        self.index = index


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to reach one agent."""

    host: str
    port: int = 161
    version: str = "2c"
    community: str = "public"
    user: UsmUser | None = None
    context: str = ""
    timeout: float = 1.0
    retries: int = 1


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, client: SnmpClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.client._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        self.client._on_error(exc)


class SnmpClient:
    """One device's SNMP session: its own socket, request ids and v3 engine state."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.engine = EngineState()
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._waiter: asyncio.Future[bytes] | None = None
        self._rid = random.randint(1, 1 << 30)  # noqa: S311 (request ids, not secrets)
        self.requests = 0
        self.responses = 0  # datagrams received: the poller's sign that the device is alive

    async def open(self) -> None:
        """Create the connected UDP socket."""
        loop = asyncio.get_running_loop()
        if self._transport is not None and self._loop is not loop:
            self.close()  # created under an event loop that has ended
        if self._transport is None:
            self._loop = loop
            try:
                info = socket.getaddrinfo(self.target.host, self.target.port,
                                          type=socket.SOCK_DGRAM)[0]
                sock = socket.socket(info[0], socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect(info[4])
                tr, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
            except OSError as exc:
                raise SnmpError("socket", f"cannot open UDP socket to {self.target.host}:"
                                f"{self.target.port}: {exc}") from exc
            self._sock = sock
            self._transport = tr

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            try:
                self._transport.close()
            except RuntimeError:  # its event loop has ended: release the socket directly
                if self._sock is not None:
                    self._sock.close()
            self._transport = None
            self._sock = None

    def _on_datagram(self, data: bytes) -> None:
        self.responses += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(data)

    def _on_error(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(SnmpError("refused", f"ICMP error: {exc}"))

    def _next_id(self) -> int:
        self._rid = (self._rid % 0x7FFFFFFE) + 1
        return self._rid

    async def _exchange(self, build: Callable[[int], bytes],
                        accept: Callable[[bytes], Decoded | None]) -> Decoded:
        """Send (with retries) until `accept` returns a decoded answer to this request."""
        await self.open()
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        for _attempt in range(self.target.retries + 1):
            rid = self._next_id()
            self._transport.sendto(build(rid))
            self.requests += 1
            deadline = loop.time() + self.target.timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._waiter = loop.create_future()
                try:
                    data = await asyncio.wait_for(self._waiter, remaining)
                except TimeoutError:
                    break
                finally:
                    self._waiter = None
                try:
                    got = accept(data)
                except UsmError as exc:
                    raise SnmpError("auth", f"response refused: {exc}") from exc
                except (ber.BerError, IndexError, ValueError) as exc:
                    raise SnmpError("decode", f"undecodable response: {exc}") from exc
                if got is not None and got.msg_id == rid:
                    return got
        raise SnmpError("timeout", f"no response from {self.target.host}:{self.target.port} "
                        f"after {self.target.retries + 1} tries of {self.target.timeout:g}s")

    async def _discover(self) -> None:
        def build(rid: int) -> bytes:
            return encode_v3(rid, None, EngineState(), 0, ber.enc_pdu(ber.GET, rid, []))

        got = await self._exchange(build, decode)
        if got.engine is None or not got.engine.engine_id:
            raise SnmpError("auth", "engine discovery returned no engine id")
        self.engine = got.engine
        self.engine.learnt_at = time.monotonic()

    async def request(self, pdu_type: int, oids: list[str], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> ber.Pdu:
        """Send one PDU and return the response PDU (agent errors raised as SnmpError)."""
        t = self.target
        if t.version == "3":
            if t.user is None:
                raise SnmpError("config", "SNMPv3 target without a user")
            user = t.user
            if not self.engine.engine_id:
                await self._discover()
            for _ in range(2):
                eng = self.engine
                etime = eng.time + int(time.monotonic() - eng.learnt_at)

                def build(rid: int, eng: EngineState = eng, etime: int = etime) -> bytes:
                    pdu = ber.enc_pdu(pdu_type, rid, oids, non_repeaters, max_repetitions)
                    return encode_v3(rid, user, eng, etime, pdu, t.context.encode())

                try:
                    got = await self._exchange(build, lambda d: decode(d, user))
                except UsmError as exc:
                    raise SnmpError("auth", str(exc)) from exc
                if got.pdu.pdu_type != ber.REPORT:
                    if got.flags & 3 != user.flags:  # never trust a downgraded response
                        raise SnmpError("auth", "response below the requested security level "
                                        f"(msgFlags {got.flags:#x})")
                    return self._check(got.pdu)
                reason = next((REPORT_REASONS.get(o, o) for o, _ in got.pdu.varbinds), "report")
                if reason == "not in time window" and got.engine is not None:
                    self.engine = got.engine
                    self.engine.learnt_at = time.monotonic()
                    continue
                if reason == "unknown engine id":  # device replaced or re-keyed: rediscover
                    await self._discover()
                    continue
                raise SnmpError("auth", f"agent refused the request: {reason}")
            raise SnmpError("auth", "agent keeps refusing after engine resynchronisation")
        version = 0 if t.version == "1" else 1
        community = t.community.encode()

        def build_c(rid: int) -> bytes:
            pdu = ber.enc_pdu(pdu_type, rid, oids, non_repeaters, max_repetitions)
            return encode_community(version, community, pdu)

        got = await self._exchange(build_c, decode)
        return self._check(got.pdu)

    @staticmethod
    def _check(pdu: ber.Pdu) -> ber.Pdu:
        if pdu.error_status:
            raise SnmpError("agent", f"agent error-status {pdu.error_status} "
                            f"at varbind {pdu.error_index}", pdu.error_status, pdu.error_index)
        return pdu

    async def get(self, oids: list[str]) -> dict[str, ber.Value]:
        """GET scalars; missing ones are left out (v1 noSuchName: dropped and asked again)."""
        want = list(oids)
        while want:
            try:
                pdu = await self.request(ber.GET, want)
            except SnmpError as exc:
                if exc.status == NO_SUCH_NAME and 0 < exc.index <= len(want):
                    want.pop(exc.index - 1)
                    continue
                raise
            return {o: v for o, v in pdu.varbinds if not v.is_exception}
        return {}

    async def bulk_walk(self, columns: list[str], max_repetitions: int = 25,
                        max_rows: int = 10000) -> dict[str, dict[str, ber.Value]]:
        """Walk several columns at once with GETBULK (GETNEXT for v1): column -> {index: value}.

        A tooBig answer halves the repetitions; a v1 noSuchName ends the column it points at.
        """
        out: dict[str, dict[str, ber.Value]] = {c: {} for c in columns}
        last = {c: c for c in columns}
        active = list(columns)
        v1 = self.target.version == "1"
        budget = max_repetitions
        while active:
            reps = max(1, budget // len(active))
            try:
                if v1:
                    pdu = await self.request(ber.GETNEXT, [last[c] for c in active])
                else:
                    pdu = await self.request(ber.GETBULK, [last[c] for c in active], 0, reps)
            except SnmpError as exc:
                if exc.status == TOO_BIG and not v1 and reps > 1:
                    budget = max(1, budget // 2)
                    continue
                if exc.status == NO_SUCH_NAME and v1 and 0 < exc.index <= len(active):
                    active.pop(exc.index - 1)
                    continue
                raise
            n = len(active)
            done: set[str] = set()
            for i, (oid, val) in enumerate(pdu.varbinds):
                col = active[i % n]
                if col in done:
                    continue
                prefix = col + "."
                if val.tag == ber.END_OF_MIB_VIEW or not oid.startswith(prefix) \
                        or len(out[col]) >= max_rows:
                    done.add(col)
                    continue
                if oid <= last[col] and _oid_key(oid) <= _oid_key(last[col]):
                    raise SnmpError("agent", f"agent returned non-increasing OID {oid}")
                out[col][oid[len(prefix):]] = val
                last[col] = oid
            if not pdu.varbinds:
                break
            active = [c for c in active if c not in done]
        return out


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))
