"""Trap receiver against real senders: net-snmp snmptrap/snmpinform (v1, v2c, v3) and pysnmp."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from snmp_it_helpers import need

from dcops.collectors.snmp.trapmap import load_trap_map
from dcops.collectors.snmp.traps import TrapReceiver
from dcops.collectors.snmp.usm import UsmUser

pytestmark = pytest.mark.integration
TRAPS = Path(__file__).parents[3] / "monitoring" / "snmp" / "traps.yml"
V3 = "-v 3 -u trapper -l authPriv -a SHA -A trap-auth-pass -x AES -X trap-priv-pass"
PYSNMP_SENDER = """
import asyncio, sys
from pysnmp.hlapi.v3arch.asyncio import *
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier
async def main(port):
    eng = SnmpEngine()
    user = UsmUserData("trapper", "trap-auth-pass", "trap-priv-pass",
                       authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol)
    target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=1, retries=0)
    err, *_ = await send_notification(eng, user, target, ContextData(), "trap",
        ObjectType(ObjectIdentity("1.3.6.1.6.3.1.1.4.1.0"),
                   ObjectIdentifier("1.3.6.1.4.1.12356.101.2.0.302")),
        ObjectType(ObjectIdentity("1.3.6.1.2.1.2.2.1.1.9"), Integer32(9)))
    eng.close_dispatcher()
    sys.exit(1 if err else 0)
asyncio.run(main(int(sys.argv[1])))
"""


@pytest.fixture
def rx() -> Iterator[TrapReceiver]:
    r = TrapReceiver("127.0.0.1", 0, communities=["lab-public"],
                     users=[UsmUser("trapper", "SHA", "trap-auth-pass", "AES", "trap-priv-pass")],
                     trap_map=load_trap_map(TRAPS))
    r.events = []
    yield r
    r.close()


async def _run(cmd: list[str]) -> int:
    p = await asyncio.create_subprocess_exec(*cmd, env={**os.environ, "MIBS": ":"},
                                             stdout=asyncio.subprocess.DEVNULL,
                                             stderr=asyncio.subprocess.DEVNULL)
    return await p.wait()


def test_v1_v2c_v3_traps_and_informs(rx: TrapReceiver, tmp_path: Path) -> None:
    need("snmptrap", "snmpinform")
    (tmp_path / "sender.py").write_text(PYSNMP_SENDER)
    dst = f"127.0.0.1:{rx.port}"
    link = ["1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.7.2", "i", "1",
            "1.3.6.1.2.1.2.2.1.8.2", "i", "2"]
    senders = [
        ["snmptrap", "-v", "1", "-c", "lab-public", dst, "1.3.6.1.4.1.8072.3", "127.0.0.1",
         "0", "0", ""],
        ["snmptrap", "-v", "2c", "-c", "lab-public", dst, "", "1.3.6.1.6.3.1.1.5.3", *link],
        ["snmptrap", *V3.split(), "-e", "0x8000000001020304", dst, "",
         "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.3", "i", "3"],
        ["snmpinform", "-v", "2c", "-c", "lab-public", "-t", "2", "-r", "0", dst, "",
         "1.3.6.1.6.3.1.1.5.5"],
        ["snmpinform", *V3.split(), "-t", "2", "-r", "0", dst, "", "1.3.6.1.6.3.1.1.5.2"],
        [sys.executable, str(tmp_path / "sender.py"), str(rx.port)],
        ["snmptrap", "-v", "2c", "-c", "not-our-community", dst, "", "1.3.6.1.6.3.1.1.5.1"],
    ]

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        task = asyncio.create_task(rx.serve(stop))
        await asyncio.sleep(0.05)
        codes = [await _run(c) for c in senders]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (b"\x30\x03\x02\x01", b"\x30\x82\xff\xff" + b"\x00" * 10, os.urandom(64)):
                s.sendto(junk, ("127.0.0.1", rx.port))
        for _ in range(100):  # until the last packets were handled (at most 5 s)
            if rx.stats.counts["malformed"] >= 3 and rx.stats.counts["auth_failure"] >= 1:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return codes

    codes = asyncio.run(scenario())
    assert codes[:6] == [0] * 6  # informs were acknowledged (snmpinform exits 1 on timeout)
    assert rx.events is not None
    got = [(e.fields["snmp.version"], e.fields["snmp.pdu"], e.fields["snmp.trap.name"])
           for e in rx.events]
    assert got == [("1", "trap-v1", "coldStart"), ("2c", "trap", "linkDown"),
                   ("3", "trap", "linkUp"), ("2c", "inform", "authenticationFailure"),
                   ("3", "inform", "warmStart"), ("3", "trap", "fgTrapVpnTunDown")]
    down = rx.events[1].fields
    assert (down["event.action"], down["interface.id"], down["interface.oper_status"]) == \
        ("interface-down", "2", 2)
    assert rx.events[5].fields["user.name"] == "trapper"
    assert rx.events[5].fields["event.severity_label"] == "critical"
    assert rx.stats.counts["auth_failure"] == 1
    assert rx.stats.counts["malformed"] == 3
    assert rx.stats.counts["inform_acked"] == 2  # sent after the events were published
