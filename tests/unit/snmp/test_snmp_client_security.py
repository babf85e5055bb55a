"""The poller never accepts a v3 response weaker than it asked for (an in-process fake agent)."""

from __future__ import annotations

import asyncio

import pytest

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.client import SnmpClient, SnmpError, Target
from dcops.collectors.snmp.message import EngineState, decode, encode_v3
from dcops.collectors.snmp.usm import UsmUser

USER = UsmUser("noc", "SHA", "auth-pass-1", "AES", "priv-pass-1")
ENGINE = EngineState(bytes.fromhex("80001f8804666b"), 1, 100)
NAME = [("1.3.6.1.2.1.1.5.0", ber.Value(ber.OCTET_STRING, b"spoofed"))]


class _Agent(asyncio.DatagramProtocol):
    def __init__(self, answer_as: UsmUser) -> None:
        self.answer_as = answer_as
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        msg = decode(data, USER)
        if msg.engine is not None and not msg.engine.engine_id:  # discovery probe
            report = ber.enc_response(msg.pdu.request_id, [("1.3.6.1.6.3.15.1.1.4.0", ber.Value(
                ber.COUNTER32, 1))], ber.REPORT)
            self.transport.sendto(encode_v3(msg.msg_id, None, ENGINE, 100, report,
                                            reportable=False), addr)
            return
        resp = ber.enc_response(msg.pdu.request_id, NAME)
        self.transport.sendto(encode_v3(msg.msg_id, self.answer_as, ENGINE, 100, resp,
                                        reportable=False), addr)


async def _get(answer_as: UsmUser) -> object:
    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(lambda: _Agent(answer_as),
                                                local_addr=("127.0.0.1", 0))
    port = tr.get_extra_info("sockname")[1]
    client = SnmpClient(Target("127.0.0.1", port, "3", user=USER, timeout=0.5, retries=0))
    try:
        return (await client.get(["1.3.6.1.2.1.1.5.0"]))["1.3.6.1.2.1.1.5.0"].value
    finally:
        client.close()
        tr.close()


def test_authpriv_answer_is_accepted() -> None:
    assert asyncio.run(_get(USER)) == b"spoofed"


@pytest.mark.parametrize("weaker", [UsmUser("noc"), UsmUser("noc", "SHA", "auth-pass-1")])
def test_downgraded_answer_is_refused(weaker: UsmUser) -> None:
    with pytest.raises(SnmpError, match="below the requested security level") as exc:
        asyncio.run(_get(weaker))
    assert exc.value.kind == "auth"
