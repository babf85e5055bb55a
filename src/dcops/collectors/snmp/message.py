"""SNMP v1/v2c community and v3 USM message framing around a PDU."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.usm import UnknownUserError, UsmError, UsmUser

MAX_SIZE = 65507


def encode_community(version: int, community: bytes, pdu: bytes) -> bytes:
    """v1 (0) / v2c (1) message."""
    return ber.tlv(ber.SEQUENCE, ber.enc_int(version) + ber.tlv(ber.OCTET_STRING, community) + pdu)


@dataclass(slots=True)
class EngineState:
    """What discovery learnt about the authoritative engine."""

    engine_id: bytes = b""
    boots: int = 0
    time: int = 0
    learnt_at: float = 0.0


def _secparams(engine: EngineState, etime: int, user: bytes, auth: bytes, priv: bytes) -> bytes:
    body = (ber.tlv(ber.OCTET_STRING, engine.engine_id) + ber.enc_int(engine.boots)
            + ber.enc_int(etime) + ber.tlv(ber.OCTET_STRING, user)
            + ber.tlv(ber.OCTET_STRING, auth) + ber.tlv(ber.OCTET_STRING, priv))
    return ber.tlv(ber.OCTET_STRING, ber.tlv(ber.SEQUENCE, body))


def encode_v3(msg_id: int, user: UsmUser | None, engine: EngineState, etime: int, pdu: bytes,
              context: bytes = b"", *, reportable: bool = True,
              context_engine_id: bytes | None = None) -> bytes:
    """A v3 message; `user` None means noAuthNoPriv with an empty user (discovery, reports)."""
    flags = (0x04 if reportable else 0) | (user.flags if user else 0)
    gdata = ber.tlv(ber.SEQUENCE, ber.enc_int(msg_id) + ber.enc_int(MAX_SIZE)
                    + ber.tlv(ber.OCTET_STRING, bytes((flags,))) + ber.enc_int(3))
    ctx_engine = engine.engine_id if context_engine_id is None else context_engine_id
    scoped = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, ctx_engine)
                     + ber.tlv(ber.OCTET_STRING, context) + pdu)
    name = user.name.encode() if user else b""
    priv = b""
    if user and user.priv_protocol:
        priv = os.urandom(8)
        scoped = ber.tlv(ber.OCTET_STRING, user.encrypt(engine.engine_id, engine.boots, etime,
                                                        priv, scoped))
    zeros = bytes(user.auth_len) if user else b""
    msg = ber.tlv(ber.SEQUENCE, ber.enc_int(3) + gdata
                  + _secparams(engine, etime, name, zeros, priv) + scoped)
    if user and user.auth_protocol:
        mac = user.sign(engine.engine_id, msg)
        idx = msg.rfind(ber.tlv(ber.OCTET_STRING, zeros) + ber.tlv(ber.OCTET_STRING, priv))
        msg = msg[:idx + 2] + mac + msg[idx + 2 + len(zeros):]
    return msg


@dataclass(slots=True)
class Decoded:
    """A received message: version, ids, the PDU and (v3) the sender's engine parameters."""

    version: int
    msg_id: int
    pdu: ber.Pdu
    engine: EngineState | None = None
    community: bytes = b""
    user_name: bytes = b""
    flags: int = 0
    context_engine_id: bytes = b""
    context_name: bytes = b""


def _pdu(buf: bytes, pos: int) -> ber.Pdu:
    if buf[pos] == ber.TRAP_V1:
        return ber.dec_trap_v1(buf, pos)
    return ber.dec_pdu(buf, pos)


def decode(data: bytes, user: UsmUser | None = None,
           users: Mapping[bytes, UsmUser] | None = None) -> Decoded:
    """Decode a message; v3 ones are authenticated and decrypted with `user` (or the entry of
    `users` named by the message's user name)."""
    _, s, e = ber.read_tlv(data, 0)
    items = ber.seq_items(data, s, e)
    if not items or items[0][0] != ber.INTEGER:
        raise ber.BerError("message does not start with a version INTEGER")
    version = int.from_bytes(data[items[0][1]:items[0][2]], "big")
    if version in (0, 1):
        if len(items) != 3:
            raise ber.BerError(f"community message has {len(items)} fields, expected 3")
        _, cs, ce = items[1]
        pdu = _pdu(data, ce)
        return Decoded(version, pdu.request_id, pdu, community=data[cs:ce])
    if version != 3 or len(items) != 4:
        raise ber.BerError(f"unsupported SNMP version {version}")
    return _decode_v3(data, items, user, users)


def _decode_v3(data: bytes, items: list[tuple[int, int, int]], user: UsmUser | None,
               users: Mapping[bytes, UsmUser] | None) -> Decoded:
    g = ber.seq_items(data, items[1][1], items[1][2])
    msg_id = int.from_bytes(data[g[0][1]:g[0][2]], "big")
    flags = data[g[2][1]] if g[2][2] > g[2][1] else 0
    _, ss, se = ber.read_tlv(data, items[2][1])
    sp = ber.seq_items(data, ss, se)
    engine = EngineState(bytes(data[sp[0][1]:sp[0][2]]),
                         int.from_bytes(data[sp[1][1]:sp[1][2]], "big"),
                         int.from_bytes(data[sp[2][1]:sp[2][2]], "big"))
    user_name = bytes(data[sp[3][1]:sp[3][2]])
    if users is not None:
        user = users.get(user_name)
        if user is None and flags & 3:
            raise UnknownUserError(f"unknown SNMPv3 user {user_name.decode(errors='replace')!r}")
    auth_s, auth_e = sp[4][1], sp[4][2]
    salt = bytes(data[sp[5][1]:sp[5][2]])
    if flags & 1:
        if user is None or not user.auth_protocol:
            raise UsmError("authenticated message but no auth key for its user")
        zeroed = data[:auth_s] + bytes(auth_e - auth_s) + data[auth_e:]
        if not user.verify(engine.engine_id, zeroed, data[auth_s:auth_e]):
            raise UsmError("message failed HMAC authentication (wrong auth key?)")
    tag, ds, de = items[3]
    if flags & 2:
        if user is None or not user.priv_protocol or tag != ber.OCTET_STRING:
            raise UsmError("encrypted scoped PDU but no privacy key for its user")
        plain = user.decrypt(engine.engine_id, engine.boots, engine.time, salt, data[ds:de])
        try:  # authenticated but undecodable once decrypted: RFC 3414 decryptionError
            _, ds, de = ber.read_tlv(plain, 0)
            sc, pdu = _scoped(plain, ds, de)
        except (ber.BerError, IndexError, ValueError) as exc:
            raise UsmError(f"decryption error (wrong priv key?): {exc}") from exc
        buf = plain
    else:
        buf = data
        sc, pdu = _scoped(buf, ds, de)
    return Decoded(3, msg_id, pdu, engine=engine, user_name=user_name, flags=flags,
                   context_engine_id=bytes(buf[sc[0][1]:sc[0][2]]),
                   context_name=bytes(buf[sc[1][1]:sc[1][2]]))


def _scoped(buf: bytes, start: int, end: int) -> tuple[list[tuple[int, int, int]], ber.Pdu]:
    """The scoped PDU's three items and its decoded PDU."""
    sc = ber.seq_items(buf, start, end)
    if len(sc) != 3:
        raise ber.BerError("scoped PDU must hold contextEngineID, contextName and a PDU")
    return sc, _pdu(buf, sc[1][2])
