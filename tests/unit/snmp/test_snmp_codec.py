"""BER codec, USM keys (RFC 3414 vectors) and message framing round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import EngineState, decode, encode_community, encode_v3
from dcops.collectors.snmp.usm import UsmError, UsmUser, localize, password_to_key


@pytest.mark.parametrize("oid", ["1.3.6.1.2.1.1.1.0", "1.3.6.1.4.1.12356.101.2.0.302",
                                 "1.3.6.1.2.1.31.1.1.1.6.4294967295", "2.999.1"])
def test_oid_round_trip(oid: str) -> None:
    _, s, e = ber.read_tlv(ber.enc_oid(oid), 0)
    assert ber.dec_oid(ber.enc_oid(oid)[s:e]) == oid


def test_non_numeric_oid_is_refused_with_the_oid_named() -> None:
    with pytest.raises(ber.BerError, match="IF-MIB::ifName"):
        ber.enc_oid("IF-MIB::ifName")


@pytest.mark.parametrize(("value", "tag"), [(0, ber.INTEGER), (-1, ber.INTEGER),
                                             (2**31 - 1, ber.INTEGER), (2**64 - 1, ber.COUNTER64),
                                             (2**32 - 1, ber.COUNTER32), (128, ber.GAUGE32)])
def test_integer_values_round_trip(value: int, tag: int) -> None:
    v = ber.Value(tag, value)
    raw = ber.enc_value(v)
    t, s, e = ber.read_tlv(raw, 0)
    assert ber.dec_value(t, raw[s:e]) == v


def test_truncated_tlv_raises_ber_error() -> None:
    with pytest.raises(ber.BerError):
        ber.read_tlv(b"\x30\x10\x02\x01", 0)


def test_rfc3414_sha_key_vectors() -> None:
    ku = password_to_key("sha1", "maplesyrup")
    assert ku.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    kul = localize("sha1", "maplesyrup", bytes.fromhex("000000000000000000000002"))
    assert kul.hex() == "6695febc9288e36282235fc7151f128497b38f3f"


def test_unknown_protocols_are_refused() -> None:
    with pytest.raises(UsmError, match="auth protocol"):
        UsmUser("u", "SHA999", "x" * 8)
    with pytest.raises(UsmError, match="privacy without authentication"):
        UsmUser("u", "", "", "AES", "x" * 8)


def test_v2c_response_round_trip() -> None:
    vbs = [("1.3.6.1.2.1.1.5.0", ber.Value(ber.OCTET_STRING, b"sw1")),
           ("1.3.6.1.2.1.1.3.0", ber.Value(ber.TIMETICKS, 4242))]
    msg = encode_community(1, b"public", ber.enc_response(77, vbs))
    got = decode(msg)
    assert (got.version, got.community, got.msg_id) == (1, b"public", 77)
    assert got.pdu.varbinds == vbs


def test_v3_authpriv_round_trip_and_wrong_key() -> None:
    user = UsmUser("noc", "SHA256", "auth-pass-1", "AES", "priv-pass-1")
    engine = EngineState(bytes.fromhex("80001f8804616263"), 3, 1000)
    vbs = [("1.3.6.1.2.1.1.5.0", ber.Value(ber.OCTET_STRING, b"fw1"))]
    msg = encode_v3(9, user, engine, 1000, ber.enc_response(5, vbs), reportable=False)
    assert b"fw1" not in msg  # encrypted
    got = decode(msg, user)
    assert got.pdu.varbinds == vbs
    assert got.engine is not None and got.engine.boots == 3
    bad = UsmUser("noc", "SHA256", "auth-pass-2", "AES", "priv-pass-1")
    with pytest.raises(UsmError, match="HMAC"):
        decode(msg, bad)


def test_v1_trap_is_translated_to_v2_form() -> None:
    body = (ber.enc_oid("1.3.6.1.4.1.9") + ber.tlv(ber.IPADDRESS, bytes([10, 0, 0, 1]))
            + ber.enc_int(2) + ber.enc_int(0) + ber.enc_uint(55, ber.TIMETICKS)
            + ber.tlv(ber.SEQUENCE, ber.tlv(ber.SEQUENCE, ber.enc_oid("1.3.6.1.2.1.2.2.1.1.7")
                                            + ber.enc_int(7))))
    msg = encode_community(0, b"public", ber.tlv(ber.TRAP_V1, body))
    vbs = dict(decode(msg).pdu.varbinds)
    assert vbs[ber.SNMP_TRAP_OID_0].value == "1.3.6.1.6.3.1.1.5.3"  # generic 2 = linkDown
    assert vbs[ber.SYS_UPTIME_0].value == 55
    assert vbs[ber.SNMP_TRAP_ADDRESS_0].value == bytes([10, 0, 0, 1])


def test_protocol_spellings_of_inventories_are_accepted() -> None:
    u = UsmUser("noc", "SHA-256", "auth-pass-1", "aes-256", "priv-pass-1")
    assert (u.auth_protocol, u.priv_protocol, u.auth_len) == ("SHA256", "AES256", 24)
    assert len(u.priv_key(b"\x80\x00\x00\x00\x01")) == 32


def _response(varbinds: list[tuple[str, ber.Value]]) -> bytes:
    return ber.enc_response(7, varbinds)


def test_response_with_long_values_and_many_varbinds_decodes_exactly() -> None:
    vbs = [(f"1.3.6.1.2.1.2.2.1.2.{i}", ber.Value(ber.OCTET_STRING, bytes([65 + i % 26]) * i))
           for i in range(1, 300, 7)]  # short and long-form lengths, a long-form list
    vbs += [("1.3.6.1.2.1.31.1.1.1.6.5", ber.Value(ber.COUNTER64, 2**64 - 1)),
            ("1.3.6.1.2.1.2.2.1.8.5", ber.Value(ber.INTEGER, -3)),
            ("1.3.6.1.2.1.1.2.0", ber.Value(ber.OID, "1.3.6.1.4.1.9.1.1208")),
            ("1.3.6.1.2.1.1.9.9", ber.Value(ber.END_OF_MIB_VIEW, None))]
    pdu = ber.dec_pdu(_response(vbs))
    assert pdu.request_id == 7 and pdu.varbinds == vbs


@pytest.mark.parametrize(("raw", "why"), [
    (b"\x30\x06\x06\x02\x2b\x06\x02\x01", "not one OID"),  # value runs past the varbind
    (b"\x30\x06\x06\x02\x2b", "runs past"),  # varbind runs past the list
    (b"\x30\x08\x04\x02\x2b\x06\x02\x01\x05\x02", "tag"),  # name is not an OID
    (b"\x30\x09\x06\x02\x2b\x06\x02\x01\x05\x05\x00", "not one OID and one value"),
    (b"\x30\x06\x06\x02\x2b\x06\x05\x00\x30\x10", "runs past|truncated"),
])
def test_malformed_varbinds_are_ber_errors(raw: bytes, why: str) -> None:
    body = ber.enc_int(7) + ber.enc_int(0) + ber.enc_int(0) + ber.tlv(ber.SEQUENCE, raw)
    with pytest.raises(ber.BerError, match=why):
        ber.dec_pdu(ber.tlv(ber.RESPONSE, body))


def test_oid_memos_are_bounded_and_never_serve_the_strict_decoder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ber, "_MEMO", 50)
    monkeypatch.setattr(ber, "_DEC_OID", {})
    monkeypatch.setattr(ber, "_ENC_OID", {})
    for i in range(500):  # a device answering with ever new OIDs
        oid = f"1.3.6.1.4.1.{i}.{i * 7}"
        raw = ber.enc_oid(oid)
        assert ber.dec_oid(raw[2:]) == oid
        assert len(ber._DEC_OID) <= 50 and len(ber._ENC_OID) <= 50
    long_arc = bytes([0x2B, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00])  # 6-byte sub-identifier
    assert ber.dec_oid(long_arc) == "1.3.34359738368"  # lenient: decoded and remembered
    with pytest.raises(ber.BerError, match="at most 5"):
        ber.dec_oid(long_arc, strict=True)  # the memo does not vouch for it


def _reference_dec_pdu(data: bytes, pos: int = 0) -> ber.Pdu:
    """The plain decoder the inlined one replaced: one read_tlv per TLV."""
    tag, s, e = ber.read_tlv(data, pos)
    items = ber.seq_items(data, s, e)
    if len(items) != 4:
        raise ber.BerError("fields")
    rid, est, eidx = (int.from_bytes(data[a:b], "big", signed=True) for _, a, b in items[:3])
    vbs = []
    for _, a, b in ber.seq_items(data, items[3][1], items[3][2]):
        (ot, os_, oe), (vt, vs, ve) = ber.seq_items(data, a, b)
        if ot != ber.OID:
            raise ber.BerError("name")
        vbs.append((ber.dec_oid(data[os_:oe]), ber.dec_value(vt, data[vs:ve])))
    return ber.Pdu(tag, rid, est, eidx, vbs)


_GOOD = ber.enc_response(4242, [
    ("1.3.6.1.2.1.31.1.1.1.1.3", ber.Value(ber.OCTET_STRING, b"Gi0/3")),
    ("1.3.6.1.2.1.2.2.1.8.3", ber.Value(ber.INTEGER, 1)),
    ("1.3.6.1.2.1.31.1.1.1.6.3", ber.Value(ber.COUNTER64, 2**40 + 7)),
    ("1.3.6.1.2.1.2.2.1.2.3", ber.Value(ber.OCTET_STRING, b"x" * 200)),
    ("1.3.6.1.2.1.1.3.0", ber.Value(ber.TIMETICKS, 99)),
    ("1.3.6.1.2.1.2.2.1.9.9", ber.Value(ber.END_OF_MIB_VIEW, None))])


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(_GOOD)))
def test_mutated_responses_decode_as_the_plain_decoder_or_fail_cleanly(
        flips: list[tuple[int, int]], cut: int) -> None:
    """A hostile agent's bytes: the inlined decoder raises only BerError, and whatever it
    accepts the plain decoder accepts with the same result (it is only ever stricter)."""
    raw = bytearray(_GOOD)
    for at, byte in flips:
        raw[at] = byte
    data = bytes(raw[:cut] if cut < len(raw) else raw)
    try:
        got = ber.dec_pdu(data)
    except ber.BerError:
        return
    assert got == _reference_dec_pdu(data)
