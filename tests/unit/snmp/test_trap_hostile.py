"""Hostile traps: judged before decoding, decoded within caps, poison stored, caches bounded.

Every receiver here publishes to a real SqliteSpool and a real JsonlSink (the CLI's fan-out), so
what the store cannot hold is seen here, as it would be in production. Costs are asserted by
counting decoder and key-localisation calls, never by timing.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcops.cli.collect_snmp import _Fanout
from dcops.collectors.snmp import ber, trapwire, usm
from dcops.collectors.snmp.events import JsonlSink
from dcops.collectors.snmp.message import EngineState, encode_community, encode_v3
from dcops.collectors.snmp.trapevents import FLAP_KEY_CHARS, FlapTracker
from dcops.collectors.snmp.trapqueue import Item
from dcops.collectors.snmp.traps import TrapReceiver
from dcops.collectors.snmp.trapwire import Limits
from dcops.collectors.snmp.usm import UsmUser
from dcops.model.event import Event, LogSource
from dcops.pipeline import SqliteSpool
from dcops.pipeline.codec import decode as decode_event

POISON = bytes.fromhex(
    "3050020101040b66757a7a2d7075626c6963a73e02016302010002010030333018060a2b0601060301010401"
    "00060a2b06010401868d1f00023017060a2b06010401868d1f01010209010000000000000000")
USER = UsmUser("trapper", "SHA", "auth-pass-x", "AES", "priv-pass-x")
TRAP_OID = "1.3.6.1.6.3.1.1.5.1"  # coldStart: no link, no flapping


class Sinks:
    """The CLI's fan-out to a real spool and a real JSON-lines file."""

    def __init__(self, tmp: Path) -> None:
        self.spool = SqliteSpool(tmp / "spool.db")
        self.jsonl = JsonlSink(tmp / "events.jsonl")
        self.fanout = _Fanout([self.spool, self.jsonl])

    def stored(self) -> list[Event]:
        db = sqlite3.connect(self.spool.path)
        try:
            return [decode_event(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
        finally:
            db.close()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.jsonl.path.read_text().splitlines() if x]


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[Sinks]:
    s = Sinks(tmp_path)
    yield s
    s.spool.close()


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    """A real UDP socket standing for the sender: inform acks arrive here."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    yield s
    s.close()


@pytest.fixture
def rx(sinks: Sinks) -> Iterator[TrapReceiver]:
    r = TrapReceiver("127.0.0.1", 0, communities=["lab", "fuzz-public"], users=[USER],
                     sink=sinks.fanout)
    r.events = []
    yield r
    r.close()


def _addr(peer: socket.socket) -> tuple[str, int]:
    host, port = peer.getsockname()
    return str(host), int(port)


def trap(varbinds: list[tuple[str, ber.Value]], community: bytes = b"lab", rid: int = 7,
         pdu: int = ber.TRAP_V2) -> bytes:
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, TRAP_OID)), *varbinds]
    return encode_community(1, community, ber.enc_response(rid, vbs, pdu))


def raw_trap(varbind_bytes: bytes, community: bytes = b"lab") -> bytes:
    """A v2c trap around hand-made varbind bytes (for encodings the encoder refuses to make)."""
    body = (ber.enc_int(7) + ber.enc_int(0) + ber.enc_int(0)
            + ber.tlv(ber.SEQUENCE, varbind_bytes))
    return encode_community(1, community, ber.tlv(ber.TRAP_V2, body))


def counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Count the calls of owner.name (still calling it)."""
    calls = [0]
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


# --- authenticate before decoding -------------------------------------------------------------

def test_wrong_community_65kb_packet_is_refused_without_decoding_a_varbind(
        rx: TrapReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    big = [(f"1.3.6.1.4.1.99999.{i}", ber.Value(ber.OCTET_STRING, os.urandom(240)))
           for i in range(250)]
    bad, good = trap(big, community=b"nope"), trap(big, community=b"lab")
    assert 60_000 < len(bad) <= 65_507
    varbinds = counting(monkeypatch, trapwire, "_varbinds")
    oids = counting(monkeypatch, ber, "dec_oid")
    assert rx.handle(bad, ("127.0.0.1", 40000)) is None
    assert (varbinds[0], oids[0]) == (0, 0)
    assert rx.istats.drops["auth"] == 1 and rx.stats.refused == {"unknown_community": 1}
    rx.handle(good, ("127.0.0.1", 40000))  # control: the same packet, accepted, is decoded
    assert varbinds[0] == 1 and oids[0] == 252  # 251 names and the trap OID value
    assert rx.events is not None and len(rx.events) == 1


def test_v3_refusals_happen_before_any_key_is_localised(
        rx: TrapReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, TRAP_OID))]
    pdu = ber.enc_response(3, vbs, ber.TRAP_V2)
    stranger = UsmUser("stranger", "SHA", "auth-pass-x", "AES", "priv-pass-x")
    packets = [
        encode_v3(1, stranger, EngineState(os.urandom(12), 1, 10), 10, pdu),  # unknown user
        encode_v3(2, USER, EngineState(os.urandom(30_000), 1, 10), 10, pdu),  # 30 kB engine id
        encode_v3(3, USER, EngineState(os.urandom(4), 1, 10), 10, pdu),  # 4 bytes
        encode_v3(4, USER, EngineState(os.urandom(33), 1, 10), 10, pdu),  # 33 bytes
        encode_v3(5, UsmUser("trapper", "SHA", "auth-pass-x"), EngineState(os.urandom(12), 1,
                                                                           10), 10, pdu),
    ]
    local = counting(monkeypatch, usm, "localize")
    decoded = counting(monkeypatch, trapwire, "decode_pdu")
    for p in packets:
        assert rx.handle(p, ("127.0.0.1", 40000)) is None
    assert (local[0], decoded[0]) == (0, 0)
    assert rx.stats.refused == {"unknown_user": 1, "engine_id": 3, "security_level": 1}
    assert rx.istats.drops["auth"] == 5
    for size in (5, 32):  # the RFC 3411 bounds themselves are accepted
        rx.handle(encode_v3(9, USER, EngineState(os.urandom(size), 1, 10), 10, pdu),
                  ("127.0.0.1", 40000))
    assert rx.events is not None and len(rx.events) == 2


def test_forged_engine_ids_keep_the_key_cache_bounded(rx: TrapReceiver) -> None:
    eid = bytes(range(1, 17))
    vbs = [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, TRAP_OID))]
    forged = UsmUser("trapper", "SHA", "not-the-key", "AES", "priv-pass-x")
    base = encode_v3(1, forged, EngineState(eid, 1, 10), 10, ber.enc_response(3, vbs,
                                                                               ber.TRAP_V2))
    at = base.index(eid)
    for _ in range(5000):  # a known user name, random sane engine ids, a wrong HMAC
        rx.handle(base[:at] + os.urandom(16) + base[at + 16:], ("127.0.0.1", 40000))
    for _ in range(100):  # and 30 kB engine ids: refused before localisation
        rx.handle(encode_v3(1, forged, EngineState(os.urandom(30_000), 1, 10), 10,
                            ber.enc_response(3, vbs, ber.TRAP_V2)), ("127.0.0.1", 40000))
    entries, key_bytes = usm.localize_cache_size()
    assert entries <= 1024
    assert key_bytes <= 1024 * (usm.ENGINE_ID_MAX + 64)
    assert rx.stats.refused == {"usm": 5000, "engine_id": 100}


def test_too_large_is_dropped_unread(sinks: Sinks, monkeypatch: pytest.MonkeyPatch) -> None:
    r = TrapReceiver("127.0.0.1", 0, communities=["lab"], sink=sinks.fanout,
                     limits=Limits(max_message_bytes=1000))
    try:
        header = counting(monkeypatch, trapwire, "read_header")
        vbs = [("1.3.6.1.4.1.99999.1", ber.Value(ber.OCTET_STRING, b"x" * 2000))]
        r.handle(trap(vbs), ("127.0.0.1", 40000))
        assert header[0] == 0
        assert r.istats.drops["too_large"] == 1 and r.stats.counts["too_large"] == 1
    finally:
        r.close()


# --- caps -------------------------------------------------------------------------------------

def _oid_vb(body: bytes) -> bytes:
    return ber.tlv(ber.SEQUENCE, ber.tlv(ber.OID, body) + ber.enc_int(1))


def _arcs(n: int) -> bytes:
    return b"\x2b" + b"\x01" * (n - 2)  # 1.3 then n-2 arcs of 1


@pytest.mark.parametrize(("what", "varbinds", "ok"), [
    ("128 sub-identifiers", _oid_vb(_arcs(128)), True),
    ("129 sub-identifiers", _oid_vb(_arcs(129)), False),
    ("sub-identifier 2^32-1", _oid_vb(b"\x2b" + ber.enc_oid("1.3.4294967295")[3:]), True),
    ("sub-identifier 2^32", _oid_vb(b"\x2b" + ber.enc_oid("1.3.4294967296")[3:]), False),
    ("6-byte sub-identifier", _oid_vb(b"\x2b\x81\x80\x80\x80\x80\x00"), False),
    ("non-minimal sub-identifier", _oid_vb(b"\x2b\x80\x01"), False),
    ("10 kB sub-identifier", _oid_vb(b"\x2b" + b"\xff" * 10_000 + b"\x7f"), False),
    ("OID ends mid-arc", _oid_vb(b"\x2b\x06\x81"), False),
    ("32-byte INTEGER", ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.4.1.99999.1")
                                + ber.tlv(ber.INTEGER, b"\x7f" + b"\xff" * 31)), True),
    ("33-byte INTEGER", ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.4.1.99999.1")
                                + ber.tlv(ber.INTEGER, b"\x7f" + b"\xff" * 32)), False),
    ("empty INTEGER", ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.4.1.99999.1")
                              + ber.tlv(ber.INTEGER, b"")), False),
    ("constructed value", ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.4.1.99999.1")
                                  + ber.tlv(ber.SEQUENCE, ber.enc_int(1))), False),
    ("three-part varbind", ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.4.1.99999.1")
                                   + ber.enc_int(1) + ber.enc_int(2)), False),
    ("256 varbinds", _oid_vb(b"\x2b\x06") * 255, True),
    ("257 varbinds", _oid_vb(b"\x2b\x06") * 256, False),
])
def test_caps(rx: TrapReceiver, what: str, varbinds: bytes, ok: bool) -> None:
    trap_oid = ber.tlv(ber.SEQUENCE, ber.enc_oid(ber.SNMP_TRAP_OID_0) + ber.enc_oid(TRAP_OID))
    rx.handle(raw_trap(trap_oid + varbinds), ("127.0.0.1", 40000))
    assert rx.events is not None
    assert (len(rx.events), rx.istats.drops["malformed"]) == ((1, 0) if ok else (0, 1)), what


@pytest.mark.parametrize("packet", [
    b"\x30\x80" + trap([])[2:],  # indefinite length
    b"\x30\x85\x00\x00\x00\x00\x10" + b"\x00" * 16,  # 5-byte length form
    b"\x30\x84\x7f\xff\xff\xff" + trap([])[2:],  # length far past the datagram
    trap([]) + b"\x00",  # bytes after the message
    b"\x30\x03\x02\x01\x02",  # version 2
    b"\x30\x0a\x02\x06\x00\x00\x00\x00\x00\x01\x04\x00",  # 6-byte version
])
def test_malformed_framing(rx: TrapReceiver, packet: bytes) -> None:
    assert rx.handle(packet, ("127.0.0.1", 40000)) is None
    assert rx.istats.drops["malformed"] == 1 and rx.events == []


def test_dec_oid_stays_lenient_for_poll_responses() -> None:
    body = ber.enc_oid("1.3.6.1.2.1.31.1.1.1.6.99999999999")[2:]  # sub-id beyond 32 bits
    assert ber.dec_oid(body) == "1.3.6.1.2.1.31.1.1.1.6.99999999999"
    with pytest.raises(ber.BerError):
        ber.dec_oid(body, strict=True)
    assert ber.dec_oid(b"\x2b" + b"\x81" * 20 + b"\x01") == "1.3." + str(
        int("0000001" * 20 + "0000001", 2))


# --- poison -----------------------------------------------------------------------------------

def test_poison_trap_is_stored_faithfully_and_blocks_nothing(rx: TrapReceiver,
                                                             sinks: Sinks) -> None:
    rx.handle(POISON, ("127.0.0.1", 40000))
    for i in range(3):
        rx.handle(trap([("1.3.6.1.4.1.99999.2", ber.Value(ber.INTEGER, i))], rid=100 + i),
                  ("127.0.0.1", 40000))
    assert rx.flush() == 0 and rx.queue.depth() == 0
    stored = sinks.stored()
    assert len(stored) == 4
    assert stored[0].fields["snmp.varbinds"]["1.3.6.1.4.1.99999.1.1"] == "18446744073709551616"
    assert stored[0].raw == POISON.hex()
    assert sinks.lines()[0]["fields"]["snmp.varbinds"]["1.3.6.1.4.1.99999.1.1"] == \
        "18446744073709551616"
    (dl,) = sinks.spool.dead_letters()  # stored, and its raw packet kept for review
    assert dl["raw"] == POISON and dl["event_id"] == stored[0].id
    assert "integer beyond 64 bits in varbind 1.3.6.1.4.1.99999.1.1" in str(dl["reason"])
    assert (rx.istats.stored_total, rx.istats.sink_errors_total) == (4, 0)
    assert rx.istats.drops.get("dead_letter", 0) == 0  # quarantined, not dropped


def test_counter64_and_negative_integers_are_kept_within_int64_or_as_strings(
        rx: TrapReceiver, sinks: Sinks) -> None:
    vbs = [("1.3.6.1.4.1.99999.1", ber.Value(ber.COUNTER64, 2**64 - 1)),
           ("1.3.6.1.4.1.99999.2", ber.Value(ber.INTEGER, -(2**63))),
           ("1.3.6.1.4.1.99999.3", ber.Value(ber.INTEGER, -(2**200)))]
    rx.handle(trap(vbs), ("127.0.0.1", 40000))
    rx.flush()
    got = sinks.stored()[0].fields["snmp.varbinds"]
    assert got["1.3.6.1.4.1.99999.1"] == str(2**64 - 1)
    assert got["1.3.6.1.4.1.99999.2"] == -(2**63)
    assert got["1.3.6.1.4.1.99999.3"] == str(-(2**200))


def test_event_the_sink_cannot_write_is_dead_lettered_and_its_inform_acknowledged(
        rx: TrapReceiver, sinks: Sinks, peer: socket.socket) -> None:
    """A batch with one event the JSON-lines file cannot take (a lone surrogate) is bisected:
    the others are stored once, that one goes to the dead-letter table, its inform is acked."""
    addr = _addr(peer)
    for i in range(6):
        rx.handle(trap([("1.3.6.1.4.1.99999.2", ber.Value(ber.INTEGER, i))], rid=200 + i), addr)
    bad = Event(id="bad-1", timestamp=rx.queue.items[0].event.timestamp, source="snmp_trap",
                logsource=LogSource("snmp", "trap", "network"), fields={"message": "\ud800"},
                raw="3000")
    rx.queue.items.insert(3, Item(bad, 0.0, 2, (b"ack-for-bad", addr)))
    assert rx.flush() == 0
    assert peer.recv(100) == b"ack-for-bad"
    assert [e["id"] for e in sinks.lines()] == [e.id for e in rx.events or []]
    dead = sinks.spool.dead_letters()
    assert [(d["event_id"], d["raw"]) for d in dead] == [("bad-1", b"3000")]
    assert "UnicodeEncodeError" in str(dead[0]["reason"])
    assert rx.istats.drops["dead_letter"] == 1 and rx.istats.stored_total == 6


def test_sink_down_keeps_a_bounded_queue_and_acks_informs_only_once_stored(
        sinks: Sinks, peer: socket.socket) -> None:
    addr = _addr(peer)
    r = TrapReceiver("127.0.0.1", 0, communities=["lab"], sink=sinks.spool, queue_capacity=5)
    sinks.spool._db.execute("PRAGMA busy_timeout = 50")  # fail fast instead of waiting 60 s
    lock = sqlite3.connect(sinks.spool.path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the spool: the sink is down
        reply = r.handle(trap([], pdu=ber.INFORM, rid=1), addr)
        assert reply is not None and r.last_was_inform
        for i in range(7):
            r.handle(trap([("1.3.6.1.4.1.99999.2", ber.Value(ber.INTEGER, i))], rid=10 + i),
                     addr)
        assert r.queue.depth() == 5 and r.istats.drops["queue_full"] == 3
        assert r.flush() == 5  # kept for retry, nothing dead-lettered, nothing acked
        assert r.istats.sink_errors_total >= 1 and r.istats.drops["dead_letter"] == 0
        assert r.queue.oldest() is not None and r.stats.counts["inform_acked"] == 0
        lock.execute("ROLLBACK")
        assert r.flush() == 0
        assert peer.recv(1000) == reply
        assert r.stats.counts["inform_acked"] == 1
        assert sinks.spool.count() == 5 and r.istats.stored_total == 5
        assert r.queue.depth() == 0 and r.queue.oldest() is None and r.queue.bytes == 0
    finally:
        lock.close()
        r.close()


# --- bounded tables ---------------------------------------------------------------------------

def test_flap_tracker_is_bounded_and_counts_evictions() -> None:
    f = FlapTracker(window=60, threshold=3, max_keys=100)
    for i in range(1000):
        f.observe(("10.0.0.1", str(i)), 0.0)
    assert len(f.seen) == 100 and f.evictions == 900
    for _ in range(50):
        f.observe(("10.0.0.1", "x" * 65_000), 1.0)
    assert max(len(k[1]) for k in f.seen) == FLAP_KEY_CHARS
    assert all(len(q) <= 4 for q in f.seen.values())


def test_receiver_flap_table_default_bound_and_metrics(rx: TrapReceiver) -> None:
    assert rx.flaps.max_keys == 10_000
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry(auto_describe=False)
    reg.register(rx.stats)
    reg.register(rx.intake)
    rx.handle(b"\x00", ("127.0.0.1", 40000))
    text = generate_latest(reg).decode()
    assert "dcops_snmp_trap_flap_evictions_total 0.0" in text
    assert 'dcops_intake_dropped_total{reason="malformed",source="snmp_trap"} 1.0' in text
    assert 'dcops_intake_queue_capacity{source="snmp_trap"} 10000.0' in text


# --- property: whatever arrives, handle() + flush with the real sinks never raises or loses ----

_TMP = Path(tempfile.mkdtemp(prefix="dcops-trap-fuzz-"))
atexit.register(shutil.rmtree, _TMP, True)
_SINKS = Sinks(_TMP)
_FUZZ = TrapReceiver("127.0.0.1", 0, communities=["lab"], users=[USER], sink=_SINKS.fanout,
                     flap_threshold=1000)
_FUZZ.events = []
_ENGINE = EngineState(bytes.fromhex("8000000001020304"), 1, 10)

values = st.one_of(
    st.integers(-(2**300), 2**300).map(lambda n: ber.Value(ber.INTEGER, n)),
    st.integers(0, 2**70).map(lambda n: ber.Value(ber.COUNTER64, n)),
    st.binary(max_size=64).map(lambda b: ber.Value(ber.OCTET_STRING, b)),
    st.text(max_size=32).map(lambda t: ber.Value(ber.OCTET_STRING, t.encode("utf-8",
                                                                             "surrogatepass"))),
    st.lists(st.integers(0, 2**33), min_size=1, max_size=140).map(
        lambda arcs: ber.Value(ber.OID, "1.3." + ".".join(map(str, arcs)))),
    st.just(ber.Value(ber.NULL, None)),
)
varbinds = st.lists(st.tuples(st.sampled_from(["1.3.6.1.4.1.99999.1", "1.3.6.1.2.1.2.2.1.1.2",
                                                "1.3.6.1.2.1.2.2.1.2.2"]), values), max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(vbs=varbinds, junk=st.binary(max_size=200), flips=st.lists(st.integers(0, 10_000),
                                                                  max_size=4),
       kind=st.sampled_from(["v2c", "inform", "v3", "poison"]))
def test_handle_and_flush_with_real_sinks_never_raise_block_or_lose(
        vbs: list[tuple[str, ber.Value]], junk: bytes, flips: list[int], kind: str) -> None:
    r = _FUZZ
    try:
        if kind == "v3":
            pkt = encode_v3(1, USER, _ENGINE, 10, ber.enc_response(
                3, [(ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, TRAP_OID)), *vbs], ber.TRAP_V2))
        elif kind == "poison":
            pkt = encode_community(1, b"lab", POISON[18:])  # the poison PDU, our community
        else:
            pkt = trap(vbs, pdu=ber.INFORM if kind == "inform" else ber.TRAP_V2)
    except ber.BerError:  # an OID the house encoder refuses: send garbage instead
        pkt = junk
    mutated = bytearray(pkt)
    for f in flips:
        mutated[f % len(mutated)] ^= 0xFF
    for data in (pkt, bytes(mutated), junk):
        r.handle(data, ("127.0.0.1", 40000))
    assert r.flush() == 0 and r.queue.depth() == 0
    s, i = r.stats.counts, r.istats
    assert i.received_total == (sum(i.drops.values()) - i.drops["dead_letter"] + s["events"]
                                + s["suppressed_flapping"] + s["v3_discovery"]
                                + s["not_in_time_window"])
    assert i.stored_total + i.drops["dead_letter"] == s["events"]
    assert _SINKS.spool.count() == len({e.id for e in r.events or []})
