"""SNMPv3 notifications judged before decoding: engine id, user, level, HMAC, then the PDU.

Keys are localised only for a known user whose message claims authentication and carries an
engine id of 5..32 bytes (RFC 3411); everything else is refused or answered (discovery) without a
key. The receiver is authoritative for informs (their sender learns its engine id and time from a
report) and not for traps (each trap carries its sender's engine id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import Decoded, EngineState, encode_v3
from dcops.collectors.snmp.trapwire import (
    Drop,
    Header,
    Limits,
    Scoped,
    decode_pdu,
    read_scoped,
    request_id,
)
from dcops.collectors.snmp.usm import ENGINE_ID_MAX, ENGINE_ID_MIN, UsmError, UsmUser

UNKNOWN_ENGINE_IDS = "1.3.6.1.6.3.15.1.1.4.0"
NOT_IN_TIME_WINDOWS = "1.3.6.1.6.3.15.1.1.2.0"
TIME_WINDOW = 150  # seconds, RFC 3414 section 3.2 step 7
USM = 3  # msgSecurityModel of the User-based Security Model


@dataclass(slots=True)
class Verdict:
    """A report to send (`outcome` names it) or an accepted message."""

    reply: bytes | None = None
    outcome: str = ""  # v3_discovery, not_in_time_window
    msg: Decoded | None = None


class V3Gate:
    """Decides on v3 messages for a receiver with `users` and its own `engine`."""

    def __init__(self, users: Mapping[bytes, UsmUser], engine: EngineState, limits: Limits,
                 discoveries: Callable[[], int]) -> None:
        self.users = users
        self.engine = engine
        self.limits = limits
        self.discoveries = discoveries

    def etime(self) -> int:
        """This engine's msgAuthoritativeEngineTime."""
        return int(time.monotonic() - self.engine.learnt_at)

    def check(self, data: bytes, h: Header) -> Verdict:
        """Judge the message whose header is `h`; decode its PDU only once it is accepted.

        Raises Drop (auth: engine_id, unknown_user, security_level, usm; or malformed).
        """
        eid, flags = h.engine.engine_id, h.flags
        if h.security_model != USM or flags & 3 == 2:
            raise Drop("malformed", f"security model {h.security_model}, msgFlags {flags:#x}")
        if (eid or flags & 1) and not ENGINE_ID_MIN <= len(eid) <= ENGINE_ID_MAX:
            raise Drop("auth", "engine_id")  # before any key is localised for it
        user = self.users.get(h.user_name)
        buf, sc = self._open(data, h, user)
        if flags & 4 and sc.pdu_tag != ber.TRAP_V2 and eid != self.engine.engine_id:
            return self._unknown_engine(h, buf, sc)  # discovery (a probe needs no user)
        if user is None:
            raise Drop("auth", "unknown_user")
        if user.flags & ~flags & 3:
            raise Drop("auth", "security_level")
        if flags & 1 and flags & 4 and sc.pdu_tag == ber.INFORM and (
                h.engine.boots != self.engine.boots
                or abs(h.engine.time - self.etime()) > TIME_WINDOW):
            return self._not_in_time(h, buf, sc, user)
        try:
            pdu = decode_pdu(buf, sc.pdu_pos, sc.end, self.limits)
        except (ber.BerError, IndexError, ValueError) as exc:
            if flags & 2:  # authenticated but undecodable once decrypted: RFC 3414 decryptionError
                raise Drop("auth", "usm") from exc
            raise Drop("malformed", str(exc)) from exc
        return Verdict(msg=Decoded(3, h.msg_id, pdu, engine=h.engine, user_name=h.user_name,
                                   flags=flags, context_engine_id=sc.context_engine_id,
                                   context_name=sc.context_name))

    def _open(self, data: bytes, h: Header, user: UsmUser | None) -> tuple[bytes, Scoped]:
        """The scoped PDU: after the user, level and HMAC checks and decryption if it claims
        authentication; as it is otherwise."""
        if not h.flags & 1:
            if h.data_tag != ber.SEQUENCE:
                raise Drop("malformed", "encrypted scoped PDU without authentication")
            try:
                return data, read_scoped(data, *h.data)
            except (ber.BerError, IndexError) as exc:
                raise Drop("malformed", str(exc)) from exc
        if user is None:
            raise Drop("auth", "unknown_user")
        if user.flags & ~h.flags & 3:
            raise Drop("auth", "security_level")
        try:
            return self._authenticated(data, h, user)
        except (UsmError, ber.BerError, IndexError, ValueError) as exc:
            raise Drop("auth", "usm") from exc  # wrong auth key, or does not decrypt

    @staticmethod
    def _authenticated(data: bytes, h: Header, user: UsmUser) -> tuple[bytes, Scoped]:
        """Verify the HMAC, decrypt if private; the scoped PDU (UsmError when either fails)."""
        a, b = h.auth
        if not user.auth_protocol or b - a != user.auth_len:
            raise UsmError("authentication parameters do not match the user's protocol")
        zeroed = data[:a] + bytes(b - a) + data[b:]
        if not user.verify(h.engine.engine_id, zeroed, data[a:b]):
            raise UsmError("message failed HMAC authentication (wrong auth key?)")
        ds, de = h.data
        if not h.flags & 2:
            if h.data_tag != ber.SEQUENCE:
                raise UsmError("authNoPriv message with an encrypted scoped PDU")
            return data, read_scoped(data, ds, de)
        if h.data_tag != ber.OCTET_STRING or not user.priv_protocol:
            raise UsmError("encrypted scoped PDU but no privacy key for its user")
        e = h.engine
        plain = user.decrypt(e.engine_id, e.boots, e.time, h.salt, data[ds:de])
        tag, ps, pe = ber.read_tlv(plain, 0)
        if tag != ber.SEQUENCE:
            raise UsmError("decryption error (wrong priv key?)")
        return plain, read_scoped(plain, ps, pe)

    def _report(self, h: Header, buf: bytes, sc: Scoped, oid: str, value: int,
                user: UsmUser | None) -> bytes:
        try:
            rid = request_id(buf, sc.pdu_pos, sc.end)
        except (ber.BerError, IndexError):
            rid = 0
        report = ber.enc_response(rid, [(oid, ber.Value(ber.COUNTER32, value))], ber.REPORT)
        return encode_v3(h.msg_id, user, self.engine, self.etime(), report, reportable=False)

    def _unknown_engine(self, h: Header, buf: bytes, sc: Scoped) -> Verdict:
        """usmStatsUnknownEngineIDs: tells an inform's sender this engine's id (discovery)."""
        return Verdict(reply=self._report(h, buf, sc, UNKNOWN_ENGINE_IDS, self.discoveries() + 1,
                                          None), outcome="v3_discovery")

    def _not_in_time(self, h: Header, buf: bytes, sc: Scoped, user: UsmUser | None) -> Verdict:
        """usmStatsNotInTimeWindows, authenticated (authNoPriv at most) with the inform's user."""
        if user is not None and user.priv_protocol:  # reports go authNoPriv at most
            user = UsmUser(user.name, user.auth_protocol, user.auth_password)
        return Verdict(reply=self._report(h, buf, sc, NOT_IN_TIME_WINDOWS, 1, user),
                       outcome="not_in_time_window")

    def ack(self, msg: Decoded, response: bytes) -> bytes:
        """The Response acknowledging an inform, under the inform's user."""
        return encode_v3(msg.msg_id, self.users.get(msg.user_name), self.engine, self.etime(),
                         response, msg.context_name, reportable=False,
                         context_engine_id=msg.context_engine_id)
