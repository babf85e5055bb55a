"""Hostile syslog / log-file lines and Wazuh alerts.json lines, and their numbered canaries.

`line()` returns one message body without framing. `stream_safe=True` keeps it usable inside a
shared newline-framed TCP stream: no newline inside and no leading digit (RFC 6587 reads a
leading digit as an octet count, which would legitimately swallow the next message). Inputs
that break framing on purpose (half octet-counted frames, 2 MiB lines without newline) are
produced by the drivers on connections of their own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

HEADERS = (b"<13>Oct 11 22:14:15 fuzzhost ", b"<34>1 2026-11-22T04:44:50.123Z fuzzhost ",
           b"<86>Nov 22 04:44:50 web1 ", b"<4>Nov 22 04:44:50 fw1 kernel: ", b"", b"<165>1 ",
           b"Nov 22 04:44:50 web1 ", b"<13>")
PROGRAMS = (b"sshd[1]: ", b"sudo: ", b"su: ", b"useradd[9]: ", b"CRON[5]: ", b"crontab[5]: ",
            b"kernel: ", b"passwd[3]: ", b"%ASA-4-106023: ", b"%SEC_LOGIN-4-LOGIN_FAILED: ",
            b"auditd: ", b"prog: ", b"")
TOKENS = (b" ", b"  ", b"IN=", b"OUT=", b"SRC=", b"DST=", b"PROTO=TCP ", b"from ", b" port ",
          b"for ", b"invalid user ", b"user ", b"=", b";", b" : ", b"(", b")", b"[", b"]", b"'",
          b'"', b"\\", b"%", b"-", b"CMD (", b"TTY=", b"COMMAND=", b"uid=", b"a0=", b"msg=audit(",
          b"type=SYSCALL ", b"Failed password ", b"Accepted ", b"Deny tcp src ", b"dst ", b"/",
          b"User '", b"executed '", b"[user: ", b"[Source: ", b"\t", b"1.2.3.4", b"65535",
          b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xf0\x9f\x98", "\u202e".encode())


class LineGen:
    """Hostile lines by kind; `cap` is the collectors' max message size (bytes)."""

    def __init__(self, rng: random.Random, cap: int = 65536) -> None:
        self.rng, self.cap = rng, cap
        self.kinds: list[tuple[str, float, Callable[[], bytes]]] = [
            ("random_bytes", 14, self._random),
            ("invalid_utf8", 10, self._invalid_utf8),
            ("nul_bytes", 6, self._nuls),
            ("token_soup", 22, self._soup),
            ("netfilter_spaces", 4, self._netfilter),
            ("audit_fragment", 6, self._audit),
            ("structured_data", 4, self._sd),
            ("odd_header", 8, self._odd_header),
            ("long_64k", 0.6, self._long_64k),
            ("line_100k", 0.25, self._long_100k),
            ("control_chars", 4, self._controls),
        ]
        total = sum(w for _, w, _ in self.kinds)
        self._table = [i for i, (_, w, _) in enumerate(self.kinds)
                       for _ in range(max(1, round(w / total * 2000)))]

    def line(self, *, stream_safe: bool, limit: int = 0) -> tuple[str, bytes]:
        """One hostile line and its kind; `limit` caps its length (UDP: 65,000)."""
        name, _, make = self.kinds[self._table[self.rng.randrange(len(self._table))]]
        data = make()
        if limit:
            data = data[:limit]
        if stream_safe:
            data = data.replace(b"\n", b" ")
            if data[:1].isdigit() or not data:
                data = b"<13>" + data
        return name, data

    def _head(self) -> bytes:
        r = self.rng
        return HEADERS[r.randrange(len(HEADERS))] + PROGRAMS[r.randrange(len(PROGRAMS))]

    def _random(self) -> bytes:
        r = self.rng
        return r.randbytes(r.randint(1, r.choice((4, 60, 300, 2000))))

    def _invalid_utf8(self) -> bytes:
        r = self.rng
        bad = (b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x28",
               b"\x80", b"\xc3", b"\xf0\x9f\x98")
        return self._head() + b"".join(bad[r.randrange(len(bad))] + b"user"
                                       for _ in range(r.randint(1, 60)))

    def _nuls(self) -> bytes:
        r = self.rng
        return self._head() + b"\x00" * r.randint(1, 3000) + b"x\x00y" * r.randint(0, 30)

    def _soup(self) -> bytes:
        r = self.rng
        n = r.choices((5, 30, 200, 1500, 6000), (30, 30, 20, 8, 2))[0]
        return self._head() + b"".join(TOKENS[r.randrange(len(TOKENS))]
                                       for _ in range(r.randint(1, n)))

    def _netfilter(self) -> bytes:
        r = self.rng
        spaces = b" " * r.choice((2000, 10000, 30000))
        shapes = (b"IN=" + spaces + b"OUT=", b"IN=eth0" + spaces, b"x" + spaces + b"IN=",
                  (b"IN= OUT= " * 300) + spaces, b"[ 1.2]" + spaces + b"IN=a OUT=b" + spaces,
                  b"IN=" + b"a " * 5000)
        return b"<4>Nov 22 04:44:50 fw1 kernel: " + shapes[r.randrange(len(shapes))]

    def _audit(self) -> bytes:
        r = self.rng
        serial = r.randrange(1, 1 << 40)
        types = (b"SYSCALL", b"EXECVE", b"PATH", b"PROCTITLE", b"CWD", b"EOE", b"USER_LOGIN")
        head = b"type=%s msg=audit(%d.%03d:%d): " % (
            types[r.randrange(len(types))], r.randrange(1 << 33), r.randrange(1000), serial)
        body = (b"argc=100000 a0=", b"a1=" + b"41" * 4000, b"proctitle=" + b"ab" * 3000,
                b'name="' + b"/" * 2000, b"key=" + r.randbytes(50), b"syscall=59 success=yes")
        return head + body[r.randrange(len(body))] + b" exe=\"/x\""

    def _sd(self) -> bytes:
        r = self.rng
        sd = (b"[a b=\"" * 2000, b'[x@1 k="' + b'\\"' * 5000 + b'"]',
              b"[" * 8000, b"[id a=\"1\"]" * 3000, b'[a b="c"' + b" d=\"e\"" * 4000)
        return b"<165>1 2026-11-22T04:44:50Z h app 1 ID " + sd[r.randrange(len(sd))] + b" m"

    def _odd_header(self) -> bytes:
        r = self.rng
        heads = (b"<99999999999999999999>", b"<-1>", b"<>", b"<13>1 9999-99-99T99:99:99.99999"
                 b"99999+99:99 h a p m - x", b"<13>Feb 30 25:61:61 ", b"<191>1 - - - - - - ",
                 b"<0>" + b"9" * 400, b"<13>1 " + b"-" * 3000, b"<13>Jan  1 00:00:00 " + b"h" * 300)
        return heads[r.randrange(len(heads))] + self._soup()[: r.randint(0, 200)]

    def _long_64k(self) -> bytes:
        r = self.rng
        if r.random() < 0.5:
            return b"<13>Nov 22 04:44:50 h sshd[1]: " + bytes(
                r.choice(b"abcdefghij IN= =:;()[]'\"") for _ in range(200)) * 330
        return b"<13>Nov 22 04:44:50 h prog: " + r.randbytes(self.cap)

    def _long_100k(self) -> bytes:
        r = self.rng
        return b"<13>Nov 22 04:44:50 h kernel: IN=" + r.randbytes(100_000)

    def _controls(self) -> bytes:
        r = self.rng
        return self._head() + bytes(r.randrange(32) for _ in range(r.randint(1, 500)))


def syslog_canary(mark: str, n: int) -> bytes:
    """A valid syslog message carrying `mark` (RFC 5424, RFC 3164 or an sshd line)."""
    k = n % 3
    if k == 0:
        return f"<13>1 2026-11-22T04:44:50.000Z fuzzhost fuzzcanary {n} - - {mark}".encode()
    if k == 1:
        return f"<13>Nov 22 04:44:50 fuzzhost fuzzcanary[{n}]: {mark}".encode()
    return (f"<38>Nov 22 04:44:50 fuzzhost sshd[{n}]: Invalid user {mark} from 10.9.8.7 "
            f"port {n % 60000 + 1}").encode()


class WazuhGen:
    """Hostile alerts.json lines: not JSON, huge, deeply nested, wrong types."""

    def __init__(self, rng: random.Random, lines: LineGen) -> None:
        self.rng, self.lines = rng, lines
        base = {"timestamp": "2026-11-22T04:44:50.123+0000", "rule": {"level": 5, "id": "5710",
                "description": "sshd: attempt to login using a non-existent user"},
                "agent": {"id": "001", "name": "web1"}, "id": "1700000000.1",
                "data": {"srcip": "10.0.0.1", "srcuser": "x"}, "full_log": "Invalid user x"}
        wrong = []
        for key in ("rule", "agent", "data", "timestamp", "id", "full_log"):
            for val in ("str", 7, 1.5, None, True, [1, {"a": 2}], {"x": [None]}, 1 << 70):
                wrong.append(json.dumps({**base, key: val}).encode())
        wrong += [json.dumps({**base, "rule": {"level": "high", "id": [1],
                                               "description": {"a": 1}}}).encode(),
                  json.dumps({**base, "data": {"srcip": ["1.2.3.4"],
                                               "srcuser": {"u": 1}}}).encode(),
                  b'{"rule": {"level": NaN}, "agent": {"name": Infinity}}',
                  b'{"a": 1, "a": 2, "rule": -Infinity}', b'{"full_log": "\\ud800\\udfff\\ud800"}',
                  b'{"full_log": "\\u0000\\u0000", "agent": {"name": "\\u0000"}}',
                  b'{"id": ' + b"9" * 5000 + b"}", b'{"timestamp": "9999-99-99T99:99:99"}',
                  b"[]", b'"just a string"', b"123", b"null", b"{}", b'{"": {"": {"": ""}}}']
        self.wrong = wrong
        self.kinds: list[tuple[str, float, Callable[[], bytes]]] = [
            ("not_json", 25, lambda: self.lines.line(stream_safe=True)[1]),
            ("wrong_types", 30, lambda: self.wrong[self.rng.randrange(len(self.wrong))]),
            ("deep_nesting", 3, self._deep),
            ("truncated_json", 15, self._truncated),
            ("invalid_utf8_json", 10, self._bad_utf8),
            ("many_keys", 2, self._many_keys),
            ("huge_json", 0.3, self._huge),
        ]
        total = sum(w for _, w, _ in self.kinds)
        self._table = [i for i, (_, w, _) in enumerate(self.kinds)
                       for _ in range(max(1, round(w / total * 1000)))]
        self._base = json.dumps(base).encode()

    def line(self) -> tuple[str, bytes]:
        """One hostile alerts.json line (no newline inside) and its kind."""
        name, _, make = self.kinds[self._table[self.rng.randrange(len(self._table))]]
        return name, make().replace(b"\n", b" ")

    def _deep(self) -> bytes:
        d = self.rng.choice((500, 5000, 100_000))
        if self.rng.random() < 0.5:
            return b'{"rule": ' + b"[" * d + b"]" * d + b"}"
        return b'{"a":' * d + b"1" + b"}" * d

    def _truncated(self) -> bytes:
        return self._base[: self.rng.randrange(1, len(self._base))]

    def _bad_utf8(self) -> bytes:
        return self._base.replace(b"Invalid user x", b"Invalid user \xff\xfe\xed\xa0\x80\x00")

    def _many_keys(self) -> bytes:
        return b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(20000)) + b"}"

    def _huge(self) -> bytes:
        return b'{"rule": {"level": 3}, "full_log": "' + b"A" * 300_000 + b'"}'


def wazuh_canary(mark: str, n: int) -> bytes:
    """A valid Wazuh alert carrying `mark` in full_log and its own alert id."""
    return json.dumps({
        "timestamp": "2026-11-22T04:44:50.123+0000",
        "rule": {"level": 5, "id": "5710", "description": "sshd: non-existent user"},
        "agent": {"id": "001", "name": "web1"}, "manager": {"name": "wazuh"},
        "id": f"1790000000.{n}", "data": {"srcip": "10.0.0.1", "srcuser": mark},
        "full_log": f"Nov 22 04:44:50 web1 sshd[{n}]: Invalid user {mark} from 10.0.0.1",
    }).encode()
