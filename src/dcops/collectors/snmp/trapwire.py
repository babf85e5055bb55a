"""Untrusted notification bytes, read header first: the sender is judged before any varbind is.

The trap receiver reads the version and community (v1/v2c), or the v3 global header and the USM
security parameters (user name, engine id, boots/time, auth and privacy parameters), decides
whether the packet is accepted, and only then decodes the PDU, with hard caps. Every step is linear
in the input. The grammar fixes the nesting depth (message, [encrypted] scoped PDU, PDU, varbind
list, varbind, value): the reader follows it without recursion and refuses constructed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES
from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import EngineState

INT_TAGS = frozenset({ber.INTEGER, ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS, ber.COUNTER64})


class Drop(Exception):  # noqa: N818 - a verdict, not an error
    """A packet not accepted: `kind` is the drop reason (auth, malformed, too_large), `why` the
    detail (a refusal reason such as unknown_community, or the decoding error)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind
        self.why = why


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on one notification (beyond them it is malformed, or too large)."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # UDP carries 65,507 at most anyway
    max_varbinds: int = 256
    # INTEGER and Counter bodies: 2^64 needs 9 bytes and is represented (as a decimal string);
    # longer than this is malformed
    max_int_bytes: int = 32
    max_header_int_bytes: int = 5  # request-id, msgID, boots, time: 0..2^31-1


@dataclass(slots=True)
class Header:
    """What is known about a message before its PDU is decoded."""

    version: int  # 0 (v1), 1 (v2c) or 3
    end: int  # end of the message
    pdu_pos: int = 0  # v1/v2c: offset of the PDU
    community: bytes = b""
    msg_id: int = 0
    flags: int = 0  # v3 msgFlags: 1 auth, 2 priv, 4 reportable
    security_model: int = 0
    engine: EngineState = field(default_factory=EngineState)
    user_name: bytes = b""
    auth: tuple[int, int] = (0, 0)  # offsets of msgAuthenticationParameters
    salt: bytes = b""  # msgPrivacyParameters
    data_tag: int = 0  # v3 msgData: SEQUENCE (plain scoped PDU) or OCTET STRING (encrypted)
    data: tuple[int, int] = (0, 0)  # offsets of msgData's body


@dataclass(slots=True)
class Scoped:
    """A v3 scoped PDU's context and where its PDU lies (not yet decoded)."""

    context_engine_id: bytes
    context_name: bytes
    pdu_pos: int
    pdu_tag: int
    end: int


def _tlv(data: bytes, pos: int, end: int, want: int, what: str) -> tuple[int, int]:
    """Body offsets of the TLV `what` at `pos`, which must have tag `want` and end by `end`."""
    if pos >= end:
        raise ber.BerError(f"{what} missing at offset {pos}")
    tag, s, e = ber.read_tlv(data, pos)
    if tag != want:
        raise ber.BerError(f"{what} at offset {pos} has tag {tag:#x}, expected {want:#x}")
    if e > end:
        raise ber.BerError(f"{what} at offset {pos} runs past its container")
    return s, e


def _int(data: bytes, s: int, e: int, what: str, max_bytes: int = 5) -> int:
    if not 0 < e - s <= max_bytes:
        raise ber.BerError(f"{what} is an INTEGER of {e - s} bytes (expected 1..{max_bytes})")
    return int.from_bytes(data[s:e], "big", signed=True)


def read_header(data: bytes) -> Header:
    """Version and community, or the v3 header and USM parameters; nothing of the PDU."""
    s, e = _tlv(data, 0, len(data), ber.SEQUENCE, "message")
    if e != len(data):
        raise ber.BerError(f"{len(data) - e} bytes after the message")
    vs, ve = _tlv(data, s, e, ber.INTEGER, "version")
    version = _int(data, vs, ve, "version")
    if version in (0, 1):
        cs, ce = _tlv(data, ve, e, ber.OCTET_STRING, "community")
        return Header(version, e, pdu_pos=ce, community=data[cs:ce])
    if version != 3:
        raise ber.BerError(f"unsupported SNMP version {version} (expected 0, 1 or 3)")
    gs, ge = _tlv(data, ve, e, ber.SEQUENCE, "msgGlobalData")
    ms, me = _tlv(data, gs, ge, ber.INTEGER, "msgID")
    _, xe = _tlv(data, me, ge, ber.INTEGER, "msgMaxSize")
    fs, fe = _tlv(data, xe, ge, ber.OCTET_STRING, "msgFlags")
    ss, se = _tlv(data, fe, ge, ber.INTEGER, "msgSecurityModel")
    if fe - fs != 1 or se != ge:
        raise ber.BerError("msgGlobalData must be msgID, msgMaxSize, a 1-byte msgFlags and "
                           "msgSecurityModel")
    ps, pe = _tlv(data, ge, e, ber.OCTET_STRING, "msgSecurityParameters")
    qs, qe = _tlv(data, ps, pe, ber.SEQUENCE, "UsmSecurityParameters")
    spans = []
    pos = qs
    for tag, what in ((ber.OCTET_STRING, "msgAuthoritativeEngineID"),
                      (ber.INTEGER, "msgAuthoritativeEngineBoots"),
                      (ber.INTEGER, "msgAuthoritativeEngineTime"),
                      (ber.OCTET_STRING, "msgUserName"),
                      (ber.OCTET_STRING, "msgAuthenticationParameters"),
                      (ber.OCTET_STRING, "msgPrivacyParameters")):
        a, b = _tlv(data, pos, qe, tag, what)
        spans.append((a, b))
        pos = b
    if pos != qe or qe != pe:
        raise ber.BerError("bytes after msgPrivacyParameters")
    if pe >= e:
        raise ber.BerError("v3 message has no msgData")
    dtag, ds, de = ber.read_tlv(data, pe)
    if de != e or dtag not in (ber.SEQUENCE, ber.OCTET_STRING):
        raise ber.BerError("msgData must be a scoped PDU or an encrypted OCTET STRING")
    (es, ee), (bs, be), (ts, te), (us, ue), auth, (ps2, pe2) = spans
    engine = EngineState(data[es:ee], _int(data, bs, be, "msgAuthoritativeEngineBoots"),
                         _int(data, ts, te, "msgAuthoritativeEngineTime"))
    return Header(3, e, msg_id=_int(data, ms, me, "msgID"), flags=data[fs],
                  security_model=_int(data, ss, se, "msgSecurityModel"), engine=engine,
                  user_name=data[us:ue], auth=auth, salt=data[ps2:pe2], data_tag=dtag,
                  data=(ds, de))


def read_scoped(buf: bytes, start: int, end: int) -> Scoped:
    """contextEngineID, contextName and the PDU's position and tag (the PDU is not decoded)."""
    a, b = _tlv(buf, start, end, ber.OCTET_STRING, "contextEngineID")
    c, d = _tlv(buf, b, end, ber.OCTET_STRING, "contextName")
    if d >= end:
        raise ber.BerError("scoped PDU has no PDU")
    return Scoped(buf[a:b], buf[c:d], d, buf[d], end)


def request_id(buf: bytes, pos: int, end: int) -> int:
    """Only the request-id of the PDU at `pos` (to answer a discovery probe)."""
    tag, s, e = ber.read_tlv(buf, pos)
    if e > end:
        raise ber.BerError(f"PDU {tag:#x} runs past the message")
    rs, re_ = _tlv(buf, s, e, ber.INTEGER, "request-id")
    return _int(buf, rs, re_, "request-id")


def decode_pdu(buf: bytes, pos: int, end: int, limits: Limits) -> ber.Pdu:
    """The PDU at `pos`, which must end exactly at `end`, decoded within `limits`."""
    tag, s, e = ber.read_tlv(buf, pos)
    if e != end:
        raise ber.BerError(f"PDU at offset {pos} ends at {e}, its container at {end}")
    if tag == ber.TRAP_V1:
        return _trap_v1(buf, s, e, limits)
    n = limits.max_header_int_bytes
    rs, re_ = _tlv(buf, s, e, ber.INTEGER, "request-id")
    ts, te = _tlv(buf, re_, e, ber.INTEGER, "error-status")
    xs, xe = _tlv(buf, te, e, ber.INTEGER, "error-index")
    ls, le = _tlv(buf, xe, e, ber.SEQUENCE, "variable-bindings")
    if le != e:
        raise ber.BerError("bytes after the variable-bindings")
    return ber.Pdu(tag, _int(buf, rs, re_, "request-id", n), _int(buf, ts, te, "error-status", n),
                   _int(buf, xs, xe, "error-index", n), _varbinds(buf, ls, le, limits))


def _trap_v1(buf: bytes, s: int, e: int, limits: Limits) -> ber.Pdu:
    """An SNMPv1 Trap-PDU translated to v2 form (RFC 3584 section 3.1)."""
    n = limits.max_header_int_bytes
    os_, oe = _tlv(buf, s, e, ber.OID, "enterprise")
    as_, ae = _tlv(buf, oe, e, ber.IPADDRESS, "agent-addr")
    gs, ge = _tlv(buf, ae, e, ber.INTEGER, "generic-trap")
    ss, se = _tlv(buf, ge, e, ber.INTEGER, "specific-trap")
    ts, te = _tlv(buf, se, e, ber.TIMETICKS, "time-stamp")
    ls, le = _tlv(buf, te, e, ber.SEQUENCE, "variable-bindings")
    if le != e:
        raise ber.BerError("bytes after the v1 variable-bindings")
    enterprise = ber.dec_oid(buf[os_:oe], strict=True)
    generic, specific = _int(buf, gs, ge, "generic-trap", n), _int(buf, ss, se, "specific-trap", n)
    if generic == 6:
        trap_oid = f"{enterprise}.0.{specific}"
    elif 0 <= generic < 6:
        trap_oid = f"{ber.STANDARD_TRAPS}{generic + 1}"
    else:
        raise ber.BerError(f"v1 generic-trap {generic} out of range 0..6")
    if not 0 < te - ts <= n:
        raise ber.BerError(f"v1 time-stamp of {te - ts} bytes")
    vbs = [(ber.SYS_UPTIME_0, ber.Value(ber.TIMETICKS, int.from_bytes(buf[ts:te], "big"))),
           (ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, trap_oid)),
           *_varbinds(buf, ls, le, limits),
           (ber.SNMP_TRAP_ADDRESS_0, ber.Value(ber.IPADDRESS, buf[as_:ae])),
           (ber.SNMP_TRAP_ENTERPRISE_0, ber.Value(ber.OID, enterprise))]
    return ber.Pdu(ber.TRAP_V1, 0, 0, 0, vbs)


def _varbinds(buf: bytes, start: int, end: int, limits: Limits) -> list[tuple[str, ber.Value]]:
    out: list[tuple[str, ber.Value]] = []
    pos = start
    while pos < end:
        n = len(out) + 1
        if n > limits.max_varbinds:
            raise ber.BerError(f"more than {limits.max_varbinds} varbinds")
        vs, ve = _tlv(buf, pos, end, ber.SEQUENCE, f"varbind {n}")
        os_, oe = _tlv(buf, vs, ve, ber.OID, f"varbind {n} name")
        if oe >= ve:
            raise ber.BerError(f"varbind {n} has no value")
        tag, xs, xe = ber.read_tlv(buf, oe)
        if xe != ve:
            raise ber.BerError(f"varbind {n} holds more than a name and a value")
        out.append((ber.dec_oid(buf[os_:oe], strict=True), _value(tag, buf[xs:xe], limits, n)))
        pos = ve
    return out


def _value(tag: int, body: bytes, limits: Limits, n: int) -> ber.Value:
    if tag & 0x20 or tag & 0x1F == 0x1F:
        raise ber.BerError(f"varbind {n} value has tag {tag:#x} (constructed or multi-byte tags "
                           "are not SNMP values)")
    if tag in INT_TAGS:
        if not 0 < len(body) <= limits.max_int_bytes:
            raise ber.BerError(f"varbind {n} integer of {len(body)} bytes "
                               f"(expected 1..{limits.max_int_bytes})")
        return ber.dec_value(tag, body)
    if tag == ber.OID:
        return ber.Value(tag, ber.dec_oid(body, strict=True))
    if tag == ber.NULL or tag in ber.EXCEPTIONS:
        return ber.Value(tag, None)
    return ber.Value(tag, bytes(body))  # strings, addresses, opaque and unknown types: as bytes
