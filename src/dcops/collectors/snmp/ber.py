"""Minimal BER codec for SNMP messages (RFC 3416 PDUs): just what GET/GETBULK polling needs.

pysnmp costs ~12 ms CPU per device; this lean codec keeps polling within reach of snmp_exporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
IPADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

GET = 0xA0
GETNEXT = 0xA1
RESPONSE = 0xA2
GETBULK = 0xA5
REPORT = 0xA8

EXCEPTIONS = frozenset({NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})


class BerError(ValueError):
    """The bytes are not the BER the SNMP grammar expects."""


@dataclass(frozen=True, slots=True)
class Value:
    """A decoded varbind value: its BER tag and Python value (int, bytes, str OID or None)."""

    tag: int
    value: Any

    @property
    def is_exception(self) -> bool:
        """True for noSuchObject, noSuchInstance and endOfMibView."""
        return self.tag in EXCEPTIONS


def enc_len(n: int) -> bytes:
    """Encode a BER length."""
    if n < 0x80:
        return bytes((n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(b),)) + b


def tlv(tag: int, body: bytes) -> bytes:
    """Encode one tag-length-value."""
    return bytes((tag,)) + enc_len(len(body)) + body


def enc_int(n: int, tag: int = INTEGER) -> bytes:
    """Encode a signed INTEGER (or an application integer type with `tag`)."""
    length = max(1, (n.bit_length() + 8) // 8)
    return tlv(tag, n.to_bytes(length, "big", signed=True))


def enc_uint(n: int, tag: int) -> bytes:
    """Encode an unsigned application integer (Counter32/64, Gauge32, TimeTicks)."""
    length = max(1, (n.bit_length() + 8) // 8)
    return tlv(tag, n.to_bytes(length, "big"))


# Polling asks for and gets back the same OIDs every cycle (one device model's columns and row
# indexes repeat across the fleet): both directions are memoised in bounded dicts, emptied when
# full, so a device answering with endless fresh OIDs costs memory of at most _MEMO entries.
_MEMO = 32768
_MEMO_KEY = 64  # bytes of OID body (or characters of dotted OID) worth remembering
_ENC_OID: dict[str, bytes] = {}
_DEC_OID: dict[bytes, str] = {}


def enc_oid(oid: str) -> bytes:
    """Encode a dotted OID."""
    got = _ENC_OID.get(oid)
    if got is not None:
        return got
    enc = _enc_oid(oid)
    if len(oid) <= _MEMO_KEY:
        if len(_ENC_OID) >= _MEMO:
            _ENC_OID.clear()
        _ENC_OID[oid] = enc
    return enc


def _enc_oid(oid: str) -> bytes:
    try:
        parts = [int(p) for p in oid.strip(".").split(".")]
    except ValueError as exc:
        raise BerError(f"OID {oid!r} is not numeric (expected digits and dots)") from exc
    if len(parts) < 2:
        raise BerError(f"OID {oid!r} has fewer than two arcs")
    out = bytearray()
    for arc in [parts[0] * 40 + parts[1], *parts[2:]]:
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = []
        n = arc
        while n:
            chunk.append((n & 0x7F) | 0x80)
            n >>= 7
        chunk[0] &= 0x7F
        out.extend(reversed(chunk))
    return tlv(OID, bytes(out))


def read_tlv(data: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    """Return (tag, start of body, end of body) of the TLV at `pos`."""
    try:
        tag = data[pos]
        first = data[pos + 1]
    except IndexError as exc:
        raise BerError(f"truncated TLV at offset {pos}") from exc
    pos += 2
    if first & 0x80:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 4:
            raise BerError(f"unsupported length form at offset {pos - 1}")
        length = int.from_bytes(data[pos:pos + nbytes], "big")
        pos += nbytes
    else:
        length = first
    end = pos + length
    if end > len(data):
        raise BerError(f"TLV at offset {pos} runs past the end ({end} > {len(data)})")
    return tag, pos, end


MAX_OID_ARCS = 128  # RFC 2578 section 3.5: at most 128 sub-identifiers
MAX_SUBID = 2**32 - 1  # each sub-identifier fits 32 bits (5 bytes of 7 bits in BER)
_LONG_SUBID = 1000  # bytes; longer sub-identifiers are refused even by the lenient decoder


def _subid(chunk: bytes) -> int:
    """One sub-identifier's base-128 bytes as an int, in time linear in its length."""
    if len(chunk) <= 8:
        n = 0
        for b in chunk:
            n = (n << 7) | (b & 0x7F)
        return n
    if len(chunk) > _LONG_SUBID:
        raise BerError(f"OID sub-identifier of {len(chunk)} bytes")
    return int("".join(f"{b & 0x7F:07b}" for b in chunk), 2)


def dec_oid(body: bytes | memoryview, *, strict: bool = False) -> str:
    """Decode an OID body to dotted form, in time linear in its length.

    `strict` (untrusted notifications) also refuses more than MAX_OID_ARCS sub-identifiers, one
    above MAX_SUBID, a non-minimal sub-identifier (leading 0x80) and a body ending mid-arc.
    Lenient decodes are memoised (bounded).
    """
    data = bytes(body)
    if strict:
        return _dec_oid(data, True)
    got = _DEC_OID.get(data)
    if got is None:
        got = _dec_oid(data, False)
        if len(data) <= _MEMO_KEY:
            if len(_DEC_OID) >= _MEMO:
                _DEC_OID.clear()
            _DEC_OID[data] = got
    return got


def _dec_oid(data: bytes, strict: bool) -> str:
    if not data:
        raise BerError("empty OID")
    if strict and len(data) > MAX_OID_ARCS * 5:
        raise BerError(f"OID of {len(data)} bytes exceeds {MAX_OID_ARCS} sub-identifiers")
    arcs: list[int] = []
    start = 0
    for i, b in enumerate(data):
        if b & 0x80:
            if strict and i == start and b == 0x80:
                raise BerError(f"OID sub-identifier at byte {i} is not minimally encoded")
            continue
        if strict and i - start >= 5:
            raise BerError(f"OID sub-identifier at byte {start} has {i - start + 1} bytes "
                           f"(at most 5: {MAX_SUBID})")
        arcs.append(_subid(data[start:i + 1]))
        start = i + 1
    if not arcs or (strict and start != len(data)):
        raise BerError("OID body ends inside a sub-identifier")
    top = min(arcs[0] // 40, 2)
    out = [top, arcs[0] - 40 * top, *arcs[1:]]
    if strict:
        if len(out) > MAX_OID_ARCS:
            raise BerError(f"OID has {len(out)} sub-identifiers (at most {MAX_OID_ARCS})")
        if max(out) > MAX_SUBID:
            raise BerError(f"OID sub-identifier {max(out)} exceeds {MAX_SUBID}")
    return ".".join(map(str, out))


def dec_value(tag: int, body: bytes | memoryview) -> Value:
    """Decode a varbind value body by tag."""
    if tag == INTEGER:
        return Value(tag, int.from_bytes(body, "big", signed=True))
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        return Value(tag, int.from_bytes(body, "big"))
    if tag == OID:
        return Value(tag, dec_oid(body))
    if tag in (OCTET_STRING, IPADDRESS, OPAQUE):
        return Value(tag, bytes(body))
    return Value(tag, None)


def seq_items(data: bytes | memoryview, start: int, end: int) -> list[tuple[int, int, int]]:
    """The TLVs inside a constructed body."""
    items = []
    pos = start
    while pos < end:
        t, s, e = read_tlv(data, pos)
        items.append((t, s, e))
        pos = e
    return items


def enc_pdu(pdu_type: int, request_id: int, oids: list[str], non_repeaters: int = 0,
            max_repetitions: int = 0) -> bytes:
    """Encode a GET/GETNEXT/GETBULK PDU with NULL values."""
    vbs = b"".join(tlv(SEQUENCE, enc_oid(o) + b"\x05\x00") for o in oids)
    if pdu_type == GETBULK:
        a, b = non_repeaters, max_repetitions
    else:
        a = b = 0
    body = enc_int(request_id) + enc_int(a) + enc_int(b) + tlv(SEQUENCE, vbs)
    return tlv(pdu_type, body)


@dataclass(slots=True)
class Pdu:
    """A decoded response/report PDU."""

    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[str, Value]]


def dec_pdu(data: bytes | memoryview, pos: int = 0) -> Pdu:  # noqa: PLR0912 - one inlined loop
    """Decode the PDU TLV starting at `pos`.

    Varbinds with short-form lengths (all but the longest values) are read inline; anything
    else goes through read_tlv. Either way each varbind must be a SEQUENCE of exactly an OID and
    a value filling it, inside the varbind list.
    """
    tag, s, e = read_tlv(data, pos)
    items = seq_items(data, s, e)
    if len(items) != 4:
        raise BerError(f"PDU has {len(items)} fields, expected 4")
    rid, est, eidx = (int.from_bytes(data[a:b], "big", signed=True) for _, a, b in items[:3])
    vbs: list[tuple[str, Value]] = []
    append = vbs.append
    memo = _DEC_OID
    _, p, ve = items[3]
    try:  # the three TLV reads are written out: a helper call each was ~8 % of a device's poll
        while p < ve:
            n = data[p + 1]
            if n < 0x80:
                a, b = p + 2, p + 2 + n
            else:
                _t, a, b = read_tlv(data, p)
            if b > ve:
                raise BerError(f"varbind at offset {p} runs past its list ({b} > {ve})")
            ot, n = data[a], data[a + 1]
            if n < 0x80:
                os_, oe = a + 2, a + 2 + n
            else:
                ot, os_, oe = read_tlv(data, a)
            if ot != OID:
                raise BerError(f"varbind name has tag {ot:#x}, expected OID")
            vt, n = data[oe], data[oe + 1]
            if n < 0x80:
                vs, vend = oe + 2, oe + 2 + n
            else:
                vt, vs, vend = read_tlv(data, oe)
            if vend != b:
                raise BerError(f"varbind at offset {p} is not one OID and one value")
            key = bytes(data[os_:oe])
            oid = memo.get(key)
            if oid is None:
                oid = dec_oid(key)
            if vt in _UNSIGNED:
                append((oid, Value(vt, int.from_bytes(data[vs:vend], "big"))))
            else:
                append((oid, dec_value(vt, data[vs:vend])))
            p = b
    except IndexError as exc:
        raise BerError(f"truncated varbind at offset {p}") from exc
    return Pdu(tag, rid, est, eidx, vbs)


_UNSIGNED = frozenset({COUNTER32, GAUGE32, TIMETICKS, COUNTER64})


TRAP_V1 = 0xA4
INFORM = 0xA6
TRAP_V2 = 0xA7
SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID_0 = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS_0 = "1.3.6.1.6.3.18.1.3.0"
SNMP_TRAP_ENTERPRISE_0 = "1.3.6.1.6.3.1.1.4.3.0"
STANDARD_TRAPS = "1.3.6.1.6.3.1.1.5."


def enc_value(v: Value) -> bytes:
    """Encode a varbind value (the inverse of dec_value)."""
    if v.tag == INTEGER:
        return enc_int(int(v.value))
    if v.tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        return enc_uint(int(v.value), v.tag)
    if v.tag == OID:
        return enc_oid(str(v.value))
    if v.tag in (OCTET_STRING, IPADDRESS, OPAQUE):
        return tlv(v.tag, bytes(v.value))
    return tlv(v.tag, b"")


def enc_response(request_id: int, varbinds: list[tuple[str, Value]], pdu_type: int = RESPONSE,
                 error_status: int = 0, error_index: int = 0) -> bytes:
    """Encode a Response (or Report) PDU carrying values."""
    vbs = b"".join(tlv(SEQUENCE, enc_oid(o) + enc_value(v)) for o, v in varbinds)
    body = (enc_int(request_id) + enc_int(error_status) + enc_int(error_index)
            + tlv(SEQUENCE, vbs))
    return tlv(pdu_type, body)


def dec_trap_v1(data: bytes | memoryview, pos: int) -> Pdu:
    """Decode an SNMPv1 Trap-PDU and translate it to v2 form (RFC 3584 section 3.1)."""
    _tag, s, e = read_tlv(data, pos)
    items = seq_items(data, s, e)
    if len(items) != 6:
        raise BerError(f"v1 Trap-PDU has {len(items)} fields, expected 6")
    enterprise = dec_oid(data[items[0][1]:items[0][2]])
    agent = bytes(data[items[1][1]:items[1][2]])
    generic, specific, stamp = (int.from_bytes(data[a:b], "big") for _, a, b in items[2:5])
    if generic == 6:
        trap_oid = f"{enterprise}.0.{specific}"
    elif 0 <= generic < 6:
        trap_oid = f"{STANDARD_TRAPS}{generic + 1}"
    else:
        raise BerError(f"v1 generic-trap {generic} out of range 0..6")
    vbs: list[tuple[str, Value]] = [(SYS_UPTIME_0, Value(TIMETICKS, stamp)),
                                    (SNMP_TRAP_OID_0, Value(OID, trap_oid))]
    _, vs, ve = items[5]
    for _, a, b in seq_items(data, vs, ve):
        (_ot, os_, oe), (vt, vs2, ve2) = seq_items(data, a, b)
        vbs.append((dec_oid(data[os_:oe]), dec_value(vt, data[vs2:ve2])))
    vbs.append((SNMP_TRAP_ADDRESS_0, Value(IPADDRESS, agent)))
    vbs.append((SNMP_TRAP_ENTERPRISE_0, Value(OID, enterprise)))
    return Pdu(TRAP_V1, 0, 0, 0, vbs)
