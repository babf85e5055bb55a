"""The syslog normaliser gives the same events, byte for byte, as before its speed work.

`normalise_golden.jsonl` holds the encoded events of a fixed corpus (the bench's sshd lines,
RFC 5424, Linux programs, Cisco, netfilter, auditd, malformed and hostile lines, and seeded
random mixes of syslog pieces) as the normaliser produced them at commit a50f95f, before the
fast path of issue 18. Any change of a field, timestamp, logsource, id or raw text fails here.
Regenerate only for an intended change of the events:

    PYTHONPATH=src .venv/bin/python tests/unit/collectors/test_normalise_golden.py --write
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from dcops.collectors.parsers import Normaliser
from dcops.pipeline.codec import encode

GOLDEN = Path(__file__).with_name("normalise_golden.jsonl")
RECEIVED = datetime(2026, 11, 22, 5, 0, 7, 250000, tzinfo=UTC)
PEER = "10.77.0.12"

FIXED = [
    "<38>Nov 22 05:00:01 web1 sshd[101]: Failed password for invalid user u1 from 10.0.1.1 "
    "port 1025 ssh2",
    "<38>Nov  2 05:00:01 web1 sshd[101]: Accepted publickey for admin from 10.0.1.1 port 22 ssh2",
    "<38>Dec 31 23:59:59 web1 sshd[7]: Invalid user oracle from 203.0.113.7 port 4242",
    "<38>Jan  1 00:00:00 web1 sshd[7]: Connection closed by authenticating user root "
    "203.0.113.7 port 4242 [preauth]",
    "<86>Nov 22 05:00:01 app sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
    "COMMAND=/usr/bin/vi /etc/sudoers",
    "<86>Nov 22 05:00:01 app sudo: pam_unix(sudo:session): session opened for user root(uid=0) "
    "by alice(uid=1000)",
    "<78>Nov 22 05:17:01 app CRON[991]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)",
    "<85>Nov 22 05:00:01 app useradd[55]: new user: name=bob, UID=1001, GID=1001, "
    "home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
    "<85>Nov 22 05:00:01 app su[5]: FAILED SU (to root) alice on pts/1",
    "<4>Nov 22 04:44:50 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=10.0.0.1 "
    "LEN=60 PROTO=TCP SPT=4444 DPT=22",
    "<165>1 2026-11-22T04:44:50.003Z h app 1234 ID47 [exampleSDID@32473 iut=\"3\"] hello",
    "<165>1 2026-11-22T04:44:50+07:00 h sshd 99 - - Failed password for root from 10.1.1.1 "
    "port 22 ssh2",
    "<165>1 - - - - - -",
    "<13>1 2026-11-22T04:44:50Z fuzzhost canary 7 - - \ufeffbom message",
    "<189>Nov 22 05:00:02 switch1 123: *Nov 22 05:00:01.123: %SYS-5-CONFIG_I: Configured from "
    "console by admin on vty0 (10.0.0.5)",
    "<166>Nov 22 2026 05:00:01: %ASA-4-106023: Deny tcp src outside:203.0.113.9/4444 dst "
    "inside:10.0.0.1/22 by access-group \"in\"",
    "type=SYSCALL msg=audit(1732251601.123:777): arch=c000003e syscall=59 success=yes exit=0 "
    "ppid=1 pid=2 uid=0 comm=\"id\" exe=\"/usr/bin/id\"",
    "type=EXECVE msg=audit(1732251601.123:777): argc=1 a0=\"id\"",
    "type=EOE msg=audit(1732251601.123:777):",
    "2026-11-22T05:00:01.123456+07:00 web1 sshd[3]: Failed password for x from 1.2.3.4 port 5 ssh2",
    "Nov 22 05:00:01 web1 sshd[3]: Failed password for x from 1.2.3.4 port 5 ssh2",
    "no header at all",
    "", "<", "<>", "<999>Nov 22 05:00:01 h x: y", "<192>Nov 22 05:00:01 h x: y",
    "<38>Feb 30 05:00:01 web1 sshd[1]: bad date", "<38>Nov 22 25:61:61 web1 sshd[1]: bad time",
    "<38>Nov 22 05:00:01 web1: sshd[1]: host ends with colon",
    "<38>Nov 22 05:00:01 %web1 sshd[1]: percent host",
    "<38>Nov 22 05:00:01 web1 sshd[" + "9" * 40 + "]: long pid",
    "<38>Nov 22 05:00:01 " + "h" * 300 + " sshd[1]: long host",
    "<38>Nov 22 05:00:01 web1 " + "t" * 100 + ": long tag",
    "<38>Nov 22 05:00:01 web1 sshd[1]: " + "A" * 66_000,
    "<38>Nov 22 05:00:01 web1 sshd[1]: nul\x00in\x00it\r",
    "\ufffd\ufffd\ufffd garbage \ufffd",
    "<38>Nov 22 05:00:01 web1 sshd[1]: \u202e rtl override",
    "<38>Nov 22 05:00:01.123456: web1 sshd[1]: fractional",
    "<38>Nov 22 2025 05:00:01 web1 sshd[1]: with year",
    "<38>Nov 22 05:00:01 web1 sshd 1 no colon tag",
    "<38>Nov 22 05:00:01 web1 unknownprog[1]: something",
]
PREFIXES = ["", "<13>", "<13>1 ", "<99999>", "<34>Oct 11 22:14:15 h ", "<38>Nov 22 05:00:",
            "<4>Nov 22 04:44:50 fw kernel: ", "type=SYSCALL msg=audit(1.2:3): ",
            "type=EXECVE msg=audit(", "%ASA-4-106023: Deny ", "sshd[1]: ", "sudo: a : ",
            "<165>1 2003-10-11T22:14:15.003Z h a 1 ID [x ", "<38>Nov 22 05:00:01 web1 sshd[1]: ",
            "<86>Nov 22 05:00:01 app sudo: ", "<78>Nov 22 05:17:01 app CRON[9]: "]
TOKENS = [" ", "IN=", "OUT=", "SRC=", "from ", " port ", "for ", "invalid user ", "=", ";", "(",
          ")", "[", "]", '"', "'", "\\", "%", "\x00", "\r", "\ufffd", "\u202e", "9" * 20,
          "Failed password ", "Accepted ", "root ", "10.0.0.1", "22", "CMD ", "Nov ", "05:00:01",
          ": ", "pam_unix(sshd:auth): authentication failure; ", "rhost=1.2.3.4 user=x"]


def corpus() -> list[str]:
    """The fixed lines, the bench's shapes, and 3,000 seeded random mixes."""
    rng = random.Random(18)
    bench = [
        f"<38>Nov 22 05:00:{i % 60:02d} web{i % 9} sshd[{i}]: Failed password for invalid user "
        f"u{i} from 10.{i % 200}.{i // 200 % 250}.{i % 250} port {1024 + i % 60000} ssh2"
        for i in range(0, 3000, 7)
    ]
    mixes = [rng.choice(PREFIXES) + "".join(rng.choices(TOKENS, k=rng.randrange(0, 40)))
             for _ in range(3000)]
    return FIXED + bench + mixes


def normalise_all() -> list[bytes]:
    """Every event of the corpus, encoded, in order (one normaliser: auditd joins across)."""
    norm = Normaliser("syslog")
    out: list[bytes] = []
    for seq, line in enumerate(corpus(), 1):
        for e in norm.line(line, id_parts=(PEER, repr(RECEIVED.timestamp()), seq),
                           received=RECEIVED, peer=PEER):
            out.append(encode(e))
    out.extend(encode(e) for e in norm.flush())
    return out


def test_same_events_as_before() -> None:
    want = GOLDEN.read_bytes().splitlines()
    got = normalise_all()
    assert len(got) == len(want), f"{len(got)} events, the golden file has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert orjson.loads(g) == orjson.loads(w), f"event {i} differs"
        assert g == w, f"event {i}: same content, different bytes"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_bytes(b"\n".join(normalise_all()) + b"\n")
    print(f"wrote {GOLDEN}")
