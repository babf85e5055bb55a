"""Trap receiver without the network: decoding, community/user checks, flapping, malformed."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.cli.collect_snmp import _Fanout
from dcops.collectors.snmp import ber
from dcops.collectors.snmp.events import JsonlSink
from dcops.collectors.snmp.message import EngineState, decode, encode_community, encode_v3
from dcops.collectors.snmp.trapevents import FlapTracker
from dcops.collectors.snmp.trapmap import load_trap_map
from dcops.collectors.snmp.traps import TrapReceiver
from dcops.collectors.snmp.usm import UsmUser
from dcops.errors import CollectorError, ConfigError
from dcops.pipeline import SqliteSpool

TRAPS = Path(__file__).parents[3] / "monitoring" / "snmp" / "traps.yml"
USER = UsmUser("trapper", "SHA", "auth-pass-x", "AES", "priv-pass-x")
ADDR = ("127.0.0.1", 40000)


@pytest.fixture
def rx() -> Iterator[TrapReceiver]:
    r = TrapReceiver("127.0.0.1", 0, communities=["lab"], users=[USER],
                     trap_map=load_trap_map(TRAPS), flap_threshold=3)
    r.events = []
    yield r
    r.close()


def _v2_trap(trap_oid: str, ifindex: int = 2, pdu: int = ber.TRAP_V2,
             community: bytes = b"lab") -> bytes:
    vbs = [(ber.SYS_UPTIME_0, ber.Value(ber.TIMETICKS, 42)),
           (ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, trap_oid)),
           (f"1.3.6.1.2.1.2.2.1.1.{ifindex}", ber.Value(ber.INTEGER, ifindex))]
    return encode_community(1, community, ber.enc_response(7, vbs, pdu))


def test_link_down_decoded_with_interface(rx: TrapReceiver) -> None:
    assert rx.handle(_v2_trap("1.3.6.1.6.3.1.1.5.3"), ADDR) is None
    assert rx.events is not None
    e = rx.events[0]
    assert e.fields["event.action"] == "interface-down"
    assert e.fields["snmp.trap.name"] == "linkDown"
    assert e.fields["interface.id"] == "2"
    assert (e.logsource.product, e.logsource.service) == ("snmp", "trap")


def test_wrong_community_and_garbage_are_counted_not_raised(rx: TrapReceiver) -> None:
    rx.handle(_v2_trap("1.3.6.1.6.3.1.1.5.1", community=b"nope"), ADDR)
    for junk in (b"", b"\x30", b"\x30\x03\x02\x01\x09", b"\xff" * 40, _v2_trap("1.3")[:-3]):
        rx.handle(junk, ADDR)
    assert rx.events == []
    assert rx.stats.counts["auth_failure"] == 1
    assert rx.stats.counts["malformed"] == 5


def test_v2c_inform_is_acknowledged_with_same_request_id(rx: TrapReceiver) -> None:
    reply = rx.handle(_v2_trap("1.3.6.1.6.3.1.1.5.4", pdu=ber.INFORM), ADDR)
    assert reply is not None
    got = decode(reply)
    assert (got.pdu.pdu_type, got.pdu.request_id) == (ber.RESPONSE, 7)


def test_v3_trap_from_any_engine_and_wrong_key(rx: TrapReceiver) -> None:
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, "1.3.6.1.6.3.1.1.5.1"))]
    engine = EngineState(bytes.fromhex("8000000001020304"), 1, 10)
    rx.handle(encode_v3(1, USER, engine, 10, ber.enc_response(3, vbs, ber.TRAP_V2)), ADDR)
    assert rx.events is not None and rx.events[0].fields["user.name"] == "trapper"
    bad = UsmUser("trapper", "SHA", "wrong-pass-x", "AES", "priv-pass-x")
    rx.handle(encode_v3(2, bad, engine, 10, ber.enc_response(4, vbs, ber.TRAP_V2)), ADDR)
    assert len(rx.events) == 1
    assert rx.stats.counts["auth_failure"] == 1


def test_flapping_is_announced_once_then_suppressed(rx: TrapReceiver) -> None:
    for i in range(8):
        rx.handle(_v2_trap("1.3.6.1.6.3.1.1.5." + ("3" if i % 2 == 0 else "4")), ADDR)
    assert rx.events is not None
    actions = [e.fields["event.action"] for e in rx.events]
    assert actions == ["interface-down", "interface-up", "interface-down", "interface-flapping"]
    assert rx.stats.counts["suppressed_flapping"] == 4


def test_flap_tracker_calms_down_after_the_window() -> None:
    f = FlapTracker(window=10, threshold=2)
    assert [f.observe(("a", "1"), t) for t in (0, 1, 2, 3)] == ["pass", "pass", "start",
                                                                 "suppress"]
    assert f.observe(("a", "1"), 100) == "pass"


def test_busy_port_is_a_clear_error(rx: TrapReceiver) -> None:
    with pytest.raises(CollectorError, match=f"127.0.0.1:{rx.port}.*in use"):
        TrapReceiver("127.0.0.1", rx.port)


def test_trap_map_rejects_bad_severity(tmp_path: Path) -> None:
    f = tmp_path / "t.yml"
    f.write_text("traps:\n  1.3.6.1.6.3.1.1.5.1: {name: coldStart, severity: loud}\n")
    with pytest.raises(ConfigError, match="severity 'loud'"):
        load_trap_map(f)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), flips=st.lists(st.integers(0, 10_000), max_size=6))
def test_receiver_never_raises_on_garbage_or_mutated_packets(data: bytes, flips: list[int]) -> None:
    r = _RX
    r.handle(data, ADDR)
    good = bytearray(_v2_trap("1.3.6.1.6.3.1.1.5.3"))
    for f in flips:
        good[f % len(good)] ^= 0xFF
    r.handle(bytes(good), ADDR)
    v3 = bytearray(_V3_TRAP)
    for f in flips:
        v3[f % len(v3)] = (v3[f % len(v3)] + 1) % 256
    r.handle(bytes(v3), ADDR)
    assert r.flush() == 0 and r.queue.depth() == 0  # stored in the real spool and JSONL file
    assert r.istats.stored_total + r.istats.drops["dead_letter"] == r.stats.counts["events"]


_TMP = Path(tempfile.mkdtemp(prefix="dcops-trap-test-"))
atexit.register(shutil.rmtree, _TMP, True)
_RX = TrapReceiver("127.0.0.1", 0, communities=["lab"], users=[USER],
                   sink=_Fanout([SqliteSpool(_TMP / "spool.db"), JsonlSink(_TMP / "ev.jsonl")]))
_V3_TRAP = encode_v3(1, USER, EngineState(bytes.fromhex("8000000001020304"), 1, 10), 10,
                     ber.enc_response(3, [(ber.SNMP_TRAP_OID_0, ber.Value(
                         ber.OID, "1.3.6.1.6.3.1.1.5.1"))], ber.TRAP_V2))


def test_v3_trap_below_the_users_security_level_is_refused(rx: TrapReceiver) -> None:
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, "1.3.6.1.6.3.1.1.5.1"))]
    engine = EngineState(bytes.fromhex("8000000001020304"), 1, 10)
    for who in (UsmUser("trapper"), UsmUser("stranger")):  # noAuthNoPriv
        rx.handle(encode_v3(1, who, engine, 10, ber.enc_response(3, vbs, ber.TRAP_V2)), ADDR)
    assert rx.events == []
    assert rx.stats.counts["auth_failure"] == 2
    assert rx.stats.refused == {"security_level": 1, "unknown_user": 1}


def test_v1_v2c_without_configured_communities_is_refused_by_default() -> None:
    """A production inventory has no communities: a spoofed v2c trap must not become an event."""
    r = TrapReceiver("127.0.0.1", 0, users=[USER], trap_map=load_trap_map(TRAPS))
    r.events = []
    try:
        for community in (b"public", b"", b"anything"):
            assert r.handle(_v2_trap("1.3.6.1.6.3.1.1.5.3", community=community), ADDR) is None
        assert r.handle(_v2_trap("1.3.6.1.6.3.1.1.5.4", pdu=ber.INFORM), ADDR) is None  # no ack
        v1_pdu = ber.tlv(ber.TRAP_V1, ber.enc_oid("1.3.6.1.4.1.8072.3")
                         + ber.tlv(ber.IPADDRESS, b"\x7f\x00\x00\x01") + ber.enc_int(0)
                         + ber.enc_int(0) + ber.enc_uint(5, ber.TIMETICKS)
                         + ber.tlv(ber.SEQUENCE, b""))
        v1 = encode_community(0, b"public", v1_pdu)
        assert r.handle(v1, ADDR) is None
        assert r.events == []
        assert r.stats.refused == {"v1v2c_not_allowed": 5}
        assert r.stats.counts["auth_failure"] == 5
        assert r.stats.total == 0
        from prometheus_client import CollectorRegistry, generate_latest

        reg = CollectorRegistry()
        reg.register(r.stats)
        text = generate_latest(reg).decode()
        assert 'dcops_snmp_trap_refused_total{reason="v1v2c_not_allowed"} 5.0' in text
    finally:
        r.close()


def test_any_community_only_where_allowed_and_configured_ones_always_checked() -> None:
    lab = TrapReceiver("127.0.0.1", 0, allow_any_community=True)
    lab.events = []
    strict = TrapReceiver("127.0.0.1", 0, communities=["lab"], allow_any_community=True)
    strict.events = []
    try:
        lab.handle(_v2_trap("1.3.6.1.6.3.1.1.5.3", community=b"whatever"), ADDR)
        assert len(lab.events) == 1 and lab.stats.refused == {}
        strict.handle(_v2_trap("1.3.6.1.6.3.1.1.5.3", community=b"whatever"), ADDR)
        strict.handle(_v2_trap("1.3.6.1.6.3.1.1.5.3", community=b"lab"), ADDR)
        assert len(strict.events) == 1
        assert strict.stats.refused == {"unknown_community": 1}
    finally:
        lab.close()
        strict.close()


def test_wrong_v3_key_is_refused_as_usm(rx: TrapReceiver) -> None:
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, "1.3.6.1.6.3.1.1.5.1"))]
    engine = EngineState(bytes.fromhex("8000000001020304"), 1, 10)
    bad = UsmUser("trapper", "SHA", "auth-pass-x", "AES", "not-the-priv")
    rx.handle(encode_v3(1, bad, engine, 10, ber.enc_response(3, vbs, ber.TRAP_V2)), ADDR)
    bad_auth = UsmUser("trapper", "SHA", "not-the-auth", "AES", "priv-pass-x")
    rx.handle(encode_v3(2, bad_auth, engine, 10, ber.enc_response(4, vbs, ber.TRAP_V2)), ADDR)
    assert rx.events == []
    assert rx.stats.refused == {"usm": 2}
