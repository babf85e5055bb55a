"""Hostile SNMP packets (v1, v2c, v3) and numbered canary traps, cheap enough for a million.

Expensive shapes (60 kB sub-identifiers, deep nesting, 30 kB engine ids) are built once into
small pools; each send picks one and, for most kinds, overwrites a few bytes (a fresh input for
the receiver at the cost of one bytearray copy).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import EngineState, encode_community, encode_v3
from dcops.collectors.snmp.usm import UsmUser

ENTERPRISE = "1.3.6.1.4.1.99999.7"  # canary and template traps: not link traps, never flapping
SENDER_ENGINE = bytes.fromhex("80001f8804") + b"dcops-fuzz-sender"
MAX_UDP = 65507


def _vb(oid_body: bytes, value: bytes) -> bytes:
    return ber.tlv(ber.SEQUENCE, oid_body + value)


def _v2_pdu(pdu_type: int, rid: int, vbs: bytes) -> bytes:
    return ber.tlv(pdu_type, ber.enc_int(rid) + ber.enc_int(0) + ber.enc_int(0)
                   + ber.tlv(ber.SEQUENCE, vbs))


def _std_vbs(text: bytes, trap_oid: str = ENTERPRISE + ".0.1") -> bytes:
    return (_vb(ber.enc_oid(ber.SYS_UPTIME_0), ber.enc_uint(12345, ber.TIMETICKS))
            + _vb(ber.enc_oid(ber.SNMP_TRAP_OID_0), ber.enc_oid(trap_oid))
            + _vb(ber.enc_oid(ENTERPRISE + ".1.1"), ber.tlv(ber.OCTET_STRING, text)))


def v1_trap(community: bytes, text: bytes, generic: int = 6, agent: bytes = b"\x7f\x00\x00\x01",
            extra: bytes = b"") -> bytes:
    """An SNMPv1 Trap-PDU message (enterprise-specific by default)."""
    body = (ber.enc_oid(ENTERPRISE) + ber.tlv(ber.IPADDRESS, agent) + ber.enc_int(generic)
            + ber.enc_int(1) + ber.enc_uint(4242, ber.TIMETICKS)
            + ber.tlv(ber.SEQUENCE, _vb(ber.enc_oid(ENTERPRISE + ".1.1"),
                                        ber.tlv(ber.OCTET_STRING, text)) + extra))
    return ber.tlv(ber.SEQUENCE, ber.enc_int(0) + ber.tlv(ber.OCTET_STRING, community)
                   + ber.tlv(ber.TRAP_V1, body))


def v2c(community: bytes, vbs: bytes, rid: int = 1, pdu_type: int = ber.TRAP_V2) -> bytes:
    """An SNMPv2c trap (or inform) message around raw varbind bytes."""
    return encode_community(1, community, _v2_pdu(pdu_type, rid, vbs))


def _nested(depth: int, core: bytes = b"\x05\x00") -> bytes:
    out = core
    for _ in range(depth):
        out = ber.tlv(ber.SEQUENCE, out)
    return out


def _oid_raw(body: bytes) -> bytes:
    return ber.tlv(ber.OID, body)


class TrapGen:
    """Hostile packets by kind and canary traps for one receiver's community and v3 user."""

    def __init__(self, rng: random.Random, community: bytes, user: UsmUser) -> None:
        self.rng, self.community, self.user = rng, community, user
        self.engine = EngineState(SENDER_ENGINE, 1, 100)
        c = community
        tmpl = _std_vbs(b"fuzz-template")
        self.templates = [v1_trap(c, b"fuzz-template"), v2c(c, tmpl, 7),
                          v2c(c, tmpl, 8, ber.INFORM),
                          encode_v3(9, user, self.engine, 100, _v2_pdu(ber.TRAP_V2, 9, tmpl),
                                    reportable=False),
                          encode_v3(10, UsmUser(user.name, user.auth_protocol,
                                                user.auth_password),
                                    self.engine, 100, _v2_pdu(ber.TRAP_V2, 10, tmpl),
                                    reportable=False)]
        self.pools: dict[str, list[bytes]] = {}
        self.kinds: list[tuple[str, float, Callable[[], bytes]]] = [
            ("random_bytes", 12, self._random),
            ("ber_random_body", 8, self._ber_random),
            ("truncated", 10, self._truncated),
            ("mutated", 14, self._mutated),
            ("huge_length", 6, self._pooled("huge_length", self._huge_lengths)),
            ("deep_nesting", 1.5, self._pooled("deep_nesting", self._deep)),
            ("long_oid", 1.5, self._pooled("long_oid", self._long_oids)),
            ("big_integers", 6, self._pooled("big_integers", self._big_ints)),
            ("many_varbinds", 1, self._pooled("many_varbinds", self._many_vbs)),
            ("wrong_community", 8, self._wrong_community),
            ("bad_version_or_tag", 4, self._pooled("bad_version_or_tag", self._bad_versions)),
            ("v1_odd", 3, self._pooled("v1_odd", self._v1_odd)),
            ("v3_unknown_user", 6, self._v3_unknown_user),
            ("v3_bad_auth", 8, self._v3_bad_auth),
            ("v3_random_engine_id", 2, self._v3_random_engine),
            ("v3_odd", 4, self._pooled("v3_odd", self._v3_odd)),
            ("inform_poison", 1, self._pooled("inform_poison", self._inform_poison)),
            ("max_size", 0.5, self._pooled("max_size", self._max_size)),
        ]
        total = sum(w for _, w, _ in self.kinds)
        self._table = [i for i, (_, w, _) in enumerate(self.kinds)
                       for _ in range(max(1, round(w / total * 1000)))]

    # --- canaries -------------------------------------------------------------------------
    def canary(self, kind: str, mark: str, rid: int) -> bytes:
        """A valid trap carrying `mark`: kind v1, v2c, v3 (authPriv) or inform (v2c)."""
        text = mark.encode()
        if kind == "v1":
            return v1_trap(self.community, text)
        if kind == "v2c":
            return v2c(self.community, _std_vbs(text), rid)
        if kind == "inform":
            return v2c(self.community, _std_vbs(text), rid, ber.INFORM)
        return encode_v3(rid, self.user, self.engine, 100, _v2_pdu(ber.TRAP_V2, rid,
                                                                  _std_vbs(text)),
                         reportable=False)

    # --- hostile --------------------------------------------------------------------------
    def hostile(self) -> tuple[str, bytes]:
        """One hostile packet and its kind."""
        name, _, make = self.kinds[self._table[self.rng.randrange(len(self._table))]]
        return name, make()

    def _pooled(self, name: str, build: Callable[[], list[bytes]]) -> Callable[[], bytes]:
        def pick() -> bytes:
            pool = self.pools.get(name)
            if pool is None:
                pool = self.pools[name] = [p[:MAX_UDP] for p in build()]
            return self._flip(pool[self.rng.randrange(len(pool))], 2)
        return pick

    def _flip(self, data: bytes, most: int) -> bytes:
        """`data` with up to `most` bytes overwritten past its first 16 (keeps the header)."""
        if len(data) <= 16 or most == 0:
            return data
        b = bytearray(data)
        r = self.rng
        for _ in range(r.randint(0, most)):
            b[r.randrange(16, len(b))] = r.getrandbits(8)
        return bytes(b)

    def _random(self) -> bytes:
        r = self.rng
        n = r.choice((1, 2, 3, 8, 40, 200, 1400, 1400, 8000, MAX_UDP))
        return r.randbytes(r.randint(1, n))

    def _ber_random(self) -> bytes:
        r = self.rng
        body = r.randbytes(r.randint(0, 600))
        return ber.tlv(ber.SEQUENCE, ber.enc_int(r.choice((0, 1, 3))) + body)

    def _truncated(self) -> bytes:
        t = self.templates[self.rng.randrange(len(self.templates))]
        return t[: self.rng.randrange(1, len(t))]

    def _mutated(self) -> bytes:
        r = self.rng
        t = bytearray(self.templates[r.randrange(len(self.templates))])
        for _ in range(r.randint(1, 8)):
            op = r.randrange(3)
            pos = r.randrange(len(t))
            if op == 0:
                t[pos] = r.getrandbits(8)
            elif op == 1:
                t[pos:pos] = r.randbytes(r.randint(1, 4))
            else:
                del t[pos:pos + r.randint(1, 4)]
        return bytes(t)

    def _huge_lengths(self) -> list[bytes]:
        v = self.templates[1]
        body = v[2:]
        return [b"\x30\x84\x7f\xff\xff\xff" + body, b"\x30\x84\xff\xff\xff\xff" + body,
                b"\x30\x89\x01" + b"\xff" * 8 + body, b"\x30\x80" + body + b"\x00\x00",
                b"\x30\xff" + body, b"\x30\x82\xff\xff" + body,
                v2c(self.community, b"\x30\x84\x7f\xff\xff\xff\x06\x01\x2b"),
                v2c(self.community, _vb(ber.enc_oid("1.3.6.1.2.1.1.5.0"),
                                        b"\x04\x84\x7f\xff\xff\xf0abc")),
                v2c(b"x" * 60000, _std_vbs(b"t"))[:20] + b"\x04\x84\xff\xff\xff\xff"]

    def _deep(self) -> list[bytes]:
        c = self.community
        out = []
        for depth in (100, 2000, 15000):
            vb = _vb(ber.enc_oid(ENTERPRISE + ".2"), _nested(depth))
            out.append(v2c(c, _std_vbs(b"t") + vb))
            out.append(v2c(b"not-ours", _std_vbs(b"t") + vb))
        out.append(_nested(20000, b"\x02\x01\x01"))  # a message made only of SEQUENCEs
        return out

    def _long_oids(self) -> list[bytes]:
        c = self.community
        arcs = ".".join(str(i % 200000 + 1) for i in range(12000))
        long_arcs = ber.enc_oid("1.3." + arcs)
        huge_sub = _oid_raw(b"\x2b" + b"\xff" * 60000 + b"\x01")
        mid_sub = _oid_raw(b"\x2b" + b"\x81" * 5000 + b"\x01")
        open_end = _oid_raw(b"\x2b\x06\x01" + b"\x80" * 3000)
        return [v2c(c, _vb(long_arcs, b"\x05\x00")), v2c(c, _vb(huge_sub, b"\x05\x00")),
                v2c(b"wrong", _vb(huge_sub, b"\x05\x00")), v2c(c, _vb(mid_sub, b"\x05\x00")),
                v2c(c, _vb(ber.enc_oid(ENTERPRISE), huge_sub)), v2c(c, _vb(open_end, b"\x05\x00")),
                v1_trap(c, b"t")[:12] + huge_sub]

    def _big_ints(self) -> list[bytes]:
        c = self.community
        out = []
        for n in (1 << 64, (1 << 64) + 1, -(1 << 64) - 5, 1 << 1000, (1 << 63), -(1 << 63) - 1):
            out.append(v2c(c, _std_vbs(b"big") + _vb(ber.enc_oid(ENTERPRISE + ".3"),
                                                      ber.enc_int(n))))
        for tag in (ber.COUNTER64, ber.COUNTER32, ber.TIMETICKS, ber.GAUGE32):
            out.append(v2c(c, _std_vbs(b"big") + _vb(ber.enc_oid(ENTERPRISE + ".4"),
                                                      ber.tlv(tag, b"\xff" * 40))))
        issue = bytes.fromhex(  # the poison trap of issue 13 (INTEGER 2^64), our community
            "3050020101040b66757a7a2d7075626c6963a73e02016302010002010030333018060a2b0601060301"
            "0104010006" "0a2b06010401868d1f00023017060a2b06010401868d1f01010209010000000000000000")
        out.append(encode_community(1, c, issue[issue.index(b"\xa7"):]))  # issue 13's poison
        out.append(v2c(c, _vb(ber.enc_oid(ENTERPRISE + ".5"), ber.tlv(ber.INTEGER, b""))))
        out.append(v2c(c, _std_vbs(b"\xff\xfe\x00\xed\xa0\x80 invalid utf-8 and NUL")))
        return out

    def _many_vbs(self) -> list[bytes]:
        c = self.community
        one = _vb(ber.enc_oid(ENTERPRISE + ".6.1"), b"\x05\x00")
        return [v2c(c, _std_vbs(b"m") + one * 5000), v2c(c, one * 9000),
                v2c(c, _std_vbs(b"m") + b"".join(
                    _vb(ber.enc_oid(f"{ENTERPRISE}.6.{i}"), ber.tlv(ber.OCTET_STRING, b"\x00" * 8))
                    for i in range(2500)))]

    def _wrong_community(self) -> bytes:
        r = self.rng
        size = r.choice((1, 12, 200, 60000))
        return v2c(r.randbytes(r.randint(1, size)), _std_vbs(b"w" * r.randint(0, 3000)))[:MAX_UDP]

    def _bad_versions(self) -> list[bytes]:
        c = self.community
        pdu = _v2_pdu(ber.TRAP_V2, 3, _std_vbs(b"v"))
        out = [ber.tlv(ber.SEQUENCE, ber.enc_int(v) + ber.tlv(ber.OCTET_STRING, c) + pdu)
               for v in (2, 4, -1, 1 << 70, -(1 << 70))]
        out.append(ber.tlv(ber.SEQUENCE, ber.enc_int(1) + ber.tlv(ber.OCTET_STRING, c)
                           + ber.tlv(0xBF, pdu)))
        out.append(ber.tlv(ber.SEQUENCE, ber.enc_int(1) + ber.tlv(ber.OCTET_STRING, c)
                           + b"\x1f\x81\x80\x80\x01\x00"))  # high-tag-number form
        out.append(ber.tlv(ber.SEQUENCE, ber.enc_int(1) + ber.tlv(ber.OCTET_STRING, c)))
        out.append(ber.tlv(ber.SEQUENCE, ber.enc_int(1) + ber.tlv(ber.OCTET_STRING, c) + pdu
                           + pdu))
        for t in (ber.GET, ber.RESPONSE, ber.REPORT, ber.GETBULK, 0xA9, 0xAF):
            out.append(v2c(c, _std_vbs(b"v"), 4, t))
        out.append(b"\x02\x01\x01" * 3)
        return out

    def _v1_odd(self) -> list[bytes]:
        c = self.community
        return [v1_trap(c, b"o", generic=99), v1_trap(c, b"o", generic=-1),
                v1_trap(c, b"o", agent=b""), v1_trap(c, b"o", agent=b"\x01" * 16),
                v1_trap(c, b"o", generic=1 << 70),
                v1_trap(c, b"o", extra=_vb(b"\x04\x01x", b"\x05\x00")),
                v1_trap(c, b"o")[:-3] + b"\x30\x01\x30"]

    def _v3_msg(self, user: bytes, engine: bytes, flags: int, auth: bytes, scoped: bytes,
                salt: bytes = b"", msg_id: int = 77) -> bytes:
        gdata = ber.tlv(ber.SEQUENCE, ber.enc_int(msg_id) + ber.enc_int(MAX_UDP)
                        + ber.tlv(ber.OCTET_STRING, bytes((flags,))) + ber.enc_int(3))
        sec = ber.tlv(ber.OCTET_STRING, ber.tlv(ber.SEQUENCE, ber.tlv(
            ber.OCTET_STRING, engine) + ber.enc_int(1) + ber.enc_int(100)
            + ber.tlv(ber.OCTET_STRING, user) + ber.tlv(ber.OCTET_STRING, auth)
            + ber.tlv(ber.OCTET_STRING, salt)))
        return ber.tlv(ber.SEQUENCE, ber.enc_int(3) + gdata + sec + scoped)

    def _scoped(self, rid: int = 5) -> bytes:
        return ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, SENDER_ENGINE)
                       + ber.tlv(ber.OCTET_STRING, b"")
                       + _v2_pdu(ber.TRAP_V2, rid, _std_vbs(b"v3")))

    def _v3_unknown_user(self) -> bytes:
        r = self.rng
        name = r.randbytes(r.randint(1, 32)) if r.random() < 0.5 else b"fuzz-intruder"
        return self._v3_msg(name, SENDER_ENGINE, r.choice((1, 3, 7)), r.randbytes(12),
                            r.randbytes(r.randint(20, 400)), r.randbytes(8))

    def _v3_bad_auth(self) -> bytes:
        r = self.rng
        scoped = self._scoped() if r.random() < 0.5 else ber.tlv(ber.OCTET_STRING,
                                                                 r.randbytes(96))
        return self._v3_msg(self.user.name.encode(), SENDER_ENGINE, r.choice((1, 3, 5, 7)),
                            r.randbytes(r.choice((12, 12, 0, 11, 48))), scoped, r.randbytes(8))

    def _v3_random_engine(self) -> bytes:
        r = self.rng
        engine = os.urandom(r.choice((30000, 30000, 5000, 33)))
        return self._v3_msg(self.user.name.encode(), engine, r.choice((1, 3, 7)), r.randbytes(12),
                            ber.tlv(ber.OCTET_STRING, r.randbytes(64)), r.randbytes(8))

    def _v3_odd(self) -> list[bytes]:
        u = self.user.name.encode()
        plain = self._scoped()
        return [self._v3_msg(b"", b"", 4, b"", ber.tlv(ber.SEQUENCE, ber.tlv(
                    ber.OCTET_STRING, b"") + ber.tlv(ber.OCTET_STRING, b"")
                    + _v2_pdu(ber.INFORM, 1, b""))),  # discovery probe (reportable)
                self._v3_msg(b"", b"", 0, b"", plain),
                self._v3_msg(u, SENDER_ENGINE, 0, b"", plain),  # below the user's level
                self._v3_msg(u, SENDER_ENGINE, 2, b"", ber.tlv(ber.OCTET_STRING, b"x" * 64)),
                self._v3_msg(u, SENDER_ENGINE, 3, b"\x00" * 12, plain),  # priv flag, plaintext
                self._v3_msg(u, SENDER_ENGINE, 1, b"", plain),  # auth flag, no MAC
                self._v3_msg(u, b"\x00" * 65000, 1, b"\x00" * 12, plain),
                self._v3_msg(u * 2000, SENDER_ENGINE, 3, b"\x00" * 12, plain),
                self._v3_msg(u, SENDER_ENGINE, 255, b"\x00" * 12, plain, msg_id=1 << 80),
                ber.tlv(ber.SEQUENCE, ber.enc_int(3) + ber.tlv(ber.SEQUENCE, b"")
                        + ber.tlv(ber.OCTET_STRING, b"") + plain)]

    def _inform_poison(self) -> list[bytes]:
        c = self.community
        big = _vb(ber.enc_oid(ENTERPRISE + ".3"), ber.enc_int(1 << 64))
        return [v2c(c, _std_vbs(b"inform-poison") + big, 4242, ber.INFORM),
                v2c(c, _std_vbs(b"\xff\x00") + big * 50, 4243, ber.INFORM)]

    def _max_size(self) -> list[bytes]:
        c = self.community
        return [v2c(c, _std_vbs(b"A" * 65000)), v2c(b"nope", _std_vbs(b"B" * 65000)),
                v1_trap(c, bytes(range(256)) * 250)]
