"""Hypothesis: hostile input through each intake path with a real SqliteSpool attached.

The same paths as scripts/bench/fuzz_intake.py, in process: the trap receiver (handle, then its
flush into the spool), the syslog normaliser (its events published to the spool), the file
tailer and the Wazuh alerts reader (across a rotation). Random and structured hostile inputs are
interleaved with numbered valid canaries: nothing may raise, every canary must be in the spool
exactly once, and every stored event and dead letter must read back.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dcops.collectors.logfile import FileTailer
from dcops.collectors.parsers import Normaliser
from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import EngineState, encode_community, encode_v3
from dcops.collectors.snmp.traps import TrapReceiver
from dcops.collectors.snmp.usm import UsmUser
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.pipeline import SqliteSpool

MARK = re.compile(r"FZC-unit-(\d{6})-END")
USER = UsmUser("fuzzer", "SHA", "fuzz-auth-pass", "AES", "fuzz-priv-pass")
COMMUNITY = b"fuzz-public"
ENGINE = EngineState(bytes.fromhex("80001f8804") + b"unit-sender", 1, 10)
ENTERPRISE = "1.3.6.1.4.1.99999.7"
ADDR = ("127.0.0.1", 40001)
FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def spool() -> Iterator[tuple[SqliteSpool, Path]]:
    """A real spool in a fresh directory (hypothesis runs many examples per test)."""
    d = Path(tempfile.mkdtemp(prefix="dcops-intake-fuzz-"))
    sp = SqliteSpool(d / "spool.db")
    try:
        yield sp, d
    finally:
        sp.close()
        shutil.rmtree(d, ignore_errors=True)


def mark(n: int) -> str:
    return f"FZC-unit-{n:06d}-END"


def assert_each_once(sp: SqliteSpool, sent: list[int]) -> None:
    """Every canary in `sent` is in exactly one stored event; all events and dead letters read."""
    found: Counter[int] = Counter()
    pos = 0
    while batch := sp.fetch_after(pos, 1000):
        for _, e in batch:
            text = e.raw
            if e.source == "snmp_trap":  # raw is the packet in hex; v3 ones are encrypted
                text = bytes.fromhex(e.raw).decode("latin-1") + " ".join(
                    map(str, dict(e.fields.get("snmp.varbinds") or {}).values()))
            for n in set(MARK.findall(text)):
                found[int(n)] += 1
        pos = batch[-1][0]
    for d in sp.dead_letters(limit=1 << 30):
        assert isinstance(d["raw"], bytes)
        assert not MARK.search(bytes(d["raw"]).decode("latin-1")), d  # no canary is poison
    assert {n: found[n] for n in sent if found[n] != 1} == {}


# --- traps ------------------------------------------------------------------------------------
def _oid(arcs: list[int]) -> bytes:
    """An OID body from arbitrary (even huge) sub-identifiers, after 1.3."""
    out = bytearray()
    for arc in [43, *arcs]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return ber.tlv(ber.OID, bytes(out))


ARCS = st.lists(st.integers(0, 2**70), min_size=1, max_size=12)
VALUES = st.recursive(
    st.one_of(
        st.integers().map(ber.enc_int),
        st.tuples(st.sampled_from([ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64]),
                  st.integers(0, 2**90)).map(lambda t: ber.enc_uint(t[1], t[0])),
        st.binary(max_size=200).map(lambda b: ber.tlv(ber.OCTET_STRING, b)),
        st.binary(max_size=20).map(lambda b: ber.tlv(ber.IPADDRESS, b)),
        ARCS.map(_oid),
        st.sampled_from([b"\x05\x00", b"\x80\x00", b"\x81\x00", b"\x82\x00", b"\x44\x00"]),
        st.binary(min_size=1, max_size=40),
    ),
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: ber.tlv(ber.SEQUENCE, b"".join(xs))),
    max_leaves=12)
VARBINDS = st.lists(st.tuples(ARCS.map(_oid), VALUES), max_size=10).map(
    lambda vbs: b"".join(ber.tlv(ber.SEQUENCE, o + v) for o, v in vbs))


def _pdu(pdu_type: int, rid: int, vbs: bytes) -> bytes:
    return ber.tlv(pdu_type, ber.enc_int(rid) + ber.enc_int(0) + ber.enc_int(0)
                   + ber.tlv(ber.SEQUENCE, vbs))


def _v1(community: bytes, vbs: bytes, generic: int = 6) -> bytes:
    body = (ber.enc_oid(ENTERPRISE) + ber.tlv(ber.IPADDRESS, b"\x7f\x00\x00\x01")
            + ber.enc_int(generic) + ber.enc_int(1) + ber.enc_uint(5, ber.TIMETICKS)
            + ber.tlv(ber.SEQUENCE, vbs))
    return ber.tlv(ber.SEQUENCE, ber.enc_int(0) + ber.tlv(ber.OCTET_STRING, community)
                   + ber.tlv(ber.TRAP_V1, body))


PACKETS = st.one_of(
    st.binary(max_size=1500),
    st.builds(lambda c, t, rid, vbs: encode_community(1, c, _pdu(t, rid, vbs)),
              st.sampled_from([COMMUNITY, b"wrong", b""]),
              st.sampled_from([ber.TRAP_V2, ber.INFORM, ber.GET, ber.RESPONSE, 0xA9]),
              st.integers(-(2**70), 2**70), VARBINDS),
    st.builds(_v1, st.sampled_from([COMMUNITY, b"x"]), VARBINDS, st.integers(-3, 2**40)),
    st.builds(lambda rid, vbs: encode_v3(rid, USER, ENGINE, 10, _pdu(ber.TRAP_V2, rid, vbs),
                                         reportable=False), st.integers(0, 2**31 - 1), VARBINDS),
    st.builds(lambda name, engine, flags, rest: ber.tlv(ber.SEQUENCE, ber.enc_int(3) + ber.tlv(
        ber.SEQUENCE, ber.enc_int(1) + ber.enc_int(65507) + ber.tlv(ber.OCTET_STRING, flags)
        + ber.enc_int(3)) + ber.tlv(ber.OCTET_STRING, ber.tlv(ber.SEQUENCE, ber.tlv(
            ber.OCTET_STRING, engine) + ber.enc_int(1) + ber.enc_int(2) + ber.tlv(
            ber.OCTET_STRING, name) + ber.tlv(ber.OCTET_STRING, bytes(12)) + ber.tlv(
            ber.OCTET_STRING, bytes(8)))) + rest),
        st.sampled_from([b"fuzzer", b"intruder", b""]), st.binary(max_size=3000),
        st.binary(min_size=1, max_size=1), st.binary(max_size=200)),
).flatmap(lambda p: st.sampled_from([p, p[: len(p) // 2], p[:-1]]) if p else st.just(p))


def trap_canary(kind: str, n: int) -> bytes:
    vbs = [(ber.SYS_UPTIME_0, ber.Value(ber.TIMETICKS, n)),
           (ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, ENTERPRISE + ".0.1")),
           (ENTERPRISE + ".1.1", ber.Value(ber.OCTET_STRING, mark(n).encode()))]
    if kind == "v1":
        return _v1(COMMUNITY, ber.tlv(ber.SEQUENCE, ber.enc_oid(ENTERPRISE + ".1.1")
                                      + ber.tlv(ber.OCTET_STRING, mark(n).encode())))
    if kind == "v3":
        return encode_v3(n, USER, ENGINE, 10, ber.enc_response(n, vbs, ber.TRAP_V2),
                         reportable=False)
    pdu = ber.INFORM if kind == "inform" else ber.TRAP_V2
    return encode_community(1, COMMUNITY, ber.enc_response(n, vbs, pdu))


@FUZZ
@given(packets=st.lists(PACKETS, max_size=25),
       kinds=st.lists(st.sampled_from(["v1", "v2c", "v3", "inform"]), min_size=1, max_size=8))
def test_traps_hostile_packets_never_block_canaries(packets: list[bytes], kinds: list[str]) -> None:
    with spool() as (sp, _):
        rx = TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()], users=[USER], sink=sp)
        try:
            sent: list[int] = []
            step = max(1, len(packets) // len(kinds))
            for i, kind in enumerate(kinds):
                for p in packets[i * step:(i + 1) * step]:
                    rx.handle(p, ADDR)
                sent.append(i + 1)
                rx.handle(trap_canary(kind, i + 1), ADDR)
            for p in packets[len(kinds) * step:]:
                rx.handle(p, ADDR)
            for _ in range(3):
                assert rx.flush() == 0  # nothing kept for retry: the spool took every batch
            assert_each_once(sp, sent)
        finally:
            rx.close()


# --- syslog lines -----------------------------------------------------------------------------
PREFIXES = ["", "<13>", "<13>1 ", "<99999>", "<34>Oct 11 22:14:15 h ",
            "<4>Nov 22 04:44:50 fw kernel: ", "type=SYSCALL msg=audit(1.2:3): ",
            "type=EXECVE msg=audit(", "%ASA-4-106023: Deny ", "sshd[1]: ", "sudo: a : ",
            "<165>1 2003-10-11T22:14:15.003Z h a 1 ID [x "]
TOKENS = [" ", "IN=", "OUT=", "SRC=", "from ", " port ", "for ", "invalid user ", "=", ";", "(",
          ")", "[", "]", '"', "'", "\\", "%", "\x00", "\r", "\ufffd", "\u202e", "9" * 20]
LINES = st.one_of(
    st.binary(max_size=400).map(lambda b: b.decode("utf-8", "replace")),  # as collectors do
    st.text(max_size=300),
    st.tuples(st.sampled_from(PREFIXES), st.lists(st.sampled_from(TOKENS), max_size=120)).map(
        lambda t: t[0] + "".join(t[1])),
)


def syslog_canary(n: int) -> str:
    return (f"<13>1 2026-11-22T04:44:50Z fuzzhost canary {n} - - {mark(n)}" if n % 2 else
            f"<38>Nov 22 04:44:50 fuzzhost sshd[{n}]: Invalid user {mark(n)} from 10.0.0.9")


@FUZZ
@given(lines=st.lists(LINES, max_size=40), every=st.integers(1, 6))
def test_normaliser_events_store_and_canaries_survive(lines: list[str], every: int) -> None:
    with spool() as (sp, _):
        norm = Normaliser("syslog")
        events, sent = [], []
        for i, line in enumerate(lines):
            events += norm.line(line, id_parts=("10.0.0.1", i), peer="10.0.0.1")
            if i % every == 0:
                sent.append(i + 1)
                events += norm.line(syslog_canary(i + 1), id_parts=("10.0.0.2", i))
        events += norm.flush()
        sp.publish(events)  # never raises on content: poison is dead-lettered
        assert_each_once(sp, sent)


# --- file tailer and Wazuh alerts.json --------------------------------------------------------
def _tail(path: Path, chunks: list[bytes], rotate_at: int, rotation: str, sp: SqliteSpool,
          canary: Any, every: int, wazuh: bool) -> list[int]:
    """Write chunks and canaries, rotate once (the tailer polling in between), then close."""
    kw: dict[str, Any] = (
        {"source": "wazuh", "normaliser": WazuhAlertNormaliser()} if wazuh else {})
    t = FileTailer(path, sp, sp, **kw)
    sent: list[int] = []
    f = path.open("ab")
    for i, chunk in enumerate(chunks):
        f.write(chunk.replace(b"\n", b" ") + (b"\r\n" if i % 3 == 0 else b"\n"))
        if i % every == 0:
            sent.append(i + 1)
            f.write(canary(i + 1) + b"\n")
        f.flush()
        if i % 4 == 0:
            t.poll()
        if i == rotate_at and rotation == "rename":
            f.close()
            path.rename(path.with_name(path.name + ".1"))
            f = path.open("ab")
        elif i == rotate_at and rotation == "copytruncate":
            t.poll()  # logrotate copytruncate loses what the reader had not read: read it first
            shutil.copyfile(path, path.with_name(path.name + ".1"))
            f.truncate(0)
    f.close()
    t.poll()
    t.close()
    return sent


ROTATION = st.sampled_from(["none", "rename", "copytruncate"])


@FUZZ
@given(chunks=st.lists(st.one_of(st.binary(max_size=300), LINES.map(
    lambda s: s.encode())), max_size=30),
    rotate_at=st.integers(0, 30), rotation=ROTATION, every=st.integers(1, 5))
def test_tailer_hostile_lines_and_rotation(chunks: list[bytes], rotate_at: int, rotation: str,
                                           every: int) -> None:
    with spool() as (sp, d):
        sent = _tail(d / "auth.log", chunks, rotate_at, rotation, sp,
                     lambda n: syslog_canary(n).encode(), every, wazuh=False)
        assert_each_once(sp, sent)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
    max_leaves=25)
ALERTS = st.one_of(
    JSON.map(lambda v: json.dumps(v, default=str).encode()),
    st.fixed_dictionaries({}, optional=dict.fromkeys(
        ("rule", "agent", "data", "timestamp", "id", "full_log", "manager"), JSON)).map(
        lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda d: b'{"rule": ' + b"[" * d + b"]" * d + b"}"),
    st.sampled_from([b'{"id": "\\ud800", "agent": {"id": "\\udfff"}}', b'{"id": 1e999}',
                     b'{"agent": "web1", "rule": [5], "data": "x", "timestamp": 7}',
                     b'{"full_log": "\\u0000\\ud800", "id": ' + b"9" * 400 + b"}"]),
    st.binary(max_size=300),
)


def wazuh_canary(n: int) -> bytes:
    return json.dumps({"timestamp": "2026-11-22T04:44:50.123+0000", "id": f"17900.{n}",
                       "rule": {"level": 5, "id": "5710", "description": "sshd"},
                       "agent": {"id": "001", "name": "web1"},
                       "full_log": f"sshd[{n}]: Invalid user {mark(n)}"}).encode()


@FUZZ
@given(chunks=st.lists(ALERTS, max_size=25), rotate_at=st.integers(0, 25), rotation=ROTATION,
       every=st.integers(1, 5))
# copytruncate, then the same first line again and more than was read before the next poll:
# the head bytes match, the byte before the read position is no longer a line end (found here)
@example(chunks=[b'{"rule": ' + b"[" * 27 + b"]" * 27 + b"}"] * 2 + [b"{}"], rotate_at=0,
         rotation="copytruncate", every=1)
def test_wazuh_reader_hostile_alerts_and_rotation(chunks: list[bytes], rotate_at: int,
                                                  rotation: str, every: int) -> None:
    with spool() as (sp, d):
        sent = _tail(d / "alerts.json", chunks, rotate_at, rotation, sp, wazuh_canary, every,
                     wazuh=True)
        assert_each_once(sp, sent)
