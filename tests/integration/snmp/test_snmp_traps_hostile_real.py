"""The real `dcops collect traps` process under the poison trap, a 1,000-trap run and a wedged sink.

The poison (issue 13: a v2c trap whose INTEGER varbind is 2^64) once stopped trap storage for good:
the spool refused it, the flush loop retried it forever, informs were never acknowledged and
SIGTERM did not end the process. Here it is followed by 1,000 numbered traps and a net-snmp
`snmpinform`; every one must be stored exactly once (SQLite spool and JSON lines), the inform
answered, and SIGTERM must end the process within 5 s, also while another connection holds the
spool locked (then a second SIGTERM ends it at once).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from snmp_it_helpers import free_tcp_port, wait_http

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.message import encode_community
from dcops.lab.snmp import free_udp_ports
from dcops.pipeline.codec import decode as decode_event

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]
LAB = ROOT / "inventories" / "lab"
POISON = bytes.fromhex(
    "3050020101040b66757a7a2d7075626c6963a73e02016302010002010030333018060a2b0601060301010401"
    "00060a2b06010401868d1f00023017060a2b06010401868d1f01010209010000000000000000")
POISON_OID = "1.3.6.1.4.1.99999.1.1"
NUMBER_OID = "1.3.6.1.4.1.99999.3"
COMMUNITY = "fuzz-public"
ENV = {**os.environ, "MIBS": ":"}


class Receiver:
    """One `dcops collect traps` process with a spool, a JSONL file and /metrics."""

    def __init__(self, tmp: Path) -> None:
        assert shutil.which("snmpinform"), "net-snmp snmpinform is needed (apt-get install snmp)"
        self.port = free_udp_ports(1)[0]
        self.mport = free_tcp_port()
        self.spool = tmp / "spool.db"
        self.jsonl = tmp / "events.jsonl"
        self.log = tmp / "traps.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcops", "collect", "traps", "-i", str(LAB), "--community",
             COMMUNITY, "--listen", f"127.0.0.1:{self.port}", "--metrics-listen",
             f"127.0.0.1:{self.mport}", "--spool", str(self.spool), "--events-out",
             str(self.jsonl)], cwd=ROOT, stderr=self.log.open("ab"))
        wait_http(f"http://127.0.0.1:{self.mport}/metrics", 90)

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith((f"{name}{{{want}}} ", f"{name} ")):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name}{{{want}}} not in /metrics:\n{text}")

    def wait_stored(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.metric("dcops_intake_stored_total", source="snmp_trap") < n:
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def term(self, second_after: float | None = None) -> tuple[float, int]:
        """SIGTERM (and a second one `second_after` s later); seconds until exit, exit code."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        if second_after is not None:
            time.sleep(second_after)
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("dcops collect traps still running 30 s after SIGTERM") from None
        return time.monotonic() - t0, rc

    def send(self, packets: list[bytes]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in packets:
                s.sendto(p, ("127.0.0.1", self.port))

    def inform(self, timeout: int, retries: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["snmpinform", "-v", "2c", "-c", COMMUNITY, "-t", str(timeout), "-r", str(retries),
             f"127.0.0.1:{self.port}", "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.7",
             "i", "7"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path)
    yield r
    if r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait(5)


def numbered(n: int) -> bytes:
    vbs = [(ber.SYS_UPTIME_0, ber.Value(ber.TIMETICKS, n)),
           (ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, "1.3.6.1.4.1.99999.0.1")),
           (NUMBER_OID, ber.Value(ber.INTEGER, n))]
    return encode_community(1, COMMUNITY.encode(), ber.enc_response(100_000 + n, vbs,
                                                                     ber.TRAP_V2))


def spool_rows(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str, bytes]]]:
    db = sqlite3.connect(path)
    try:
        events = [decode_event(b).fields for (b,) in db.execute("SELECT body FROM events")]
        dead = [(str(s), str(r), bytes(raw)) for s, r, raw in
                db.execute("SELECT source, reason, raw FROM dead_letters")]
    finally:
        db.close()
    return events, dead


def test_poison_then_1000_traps_and_an_inform_all_stored_once_and_sigterm_under_5s(
        receiver: Receiver) -> None:
    receiver.send([POISON])
    receiver.send([numbered(n) for n in range(1000)])
    inform = receiver.inform(timeout=3, retries=2)
    _, err = inform.communicate(timeout=30)
    assert inform.returncode == 0, f"snmpinform got no acknowledgement: {err.decode()}"
    receiver.wait_stored(1002)
    for reason in ("auth", "malformed", "too_large", "queue_full", "dead_letter"):
        assert receiver.metric("dcops_intake_dropped_total", reason=reason,
                               source="snmp_trap") == 0, reason
    assert receiver.metric("dcops_intake_sink_errors_total", source="snmp_trap") == 0
    assert receiver.metric("dcops_spool_dead_letters") == 1  # the poison's packet, quarantined
    assert receiver.metric("dcops_snmp_trap_packets_total", outcome="inform_acked") >= 1
    took, rc = receiver.term()
    print(f"SIGTERM after 1,002 stored: exit {rc} in {took:.2f} s")
    assert took < 10.0 and rc == 0, (took, rc, receiver.log.read_text())

    events, dead = spool_rows(receiver.spool)
    numbers = Counter(f["snmp.varbinds"][NUMBER_OID] for f in events
                      if NUMBER_OID in f["snmp.varbinds"])
    assert sorted(numbers) == list(range(1000)) and set(numbers.values()) == {1}
    informs = [f for f in events if f["snmp.pdu"] == "inform"]
    assert len(informs) == 1 and informs[0]["snmp.trap.name"] == "linkUp"
    # the poison: stored faithfully (its 2^64 as a decimal string), and its raw packet recorded
    # once in the dead-letter table with the reason (quarantined for review, not dropped)
    (stored_poison,) = [f for f in events if POISON_OID in f["snmp.varbinds"]]
    assert stored_poison["snmp.varbinds"][POISON_OID] == "18446744073709551616"
    assert len(events) == 1002
    assert [(src, raw) for src, _, raw in dead] == [("snmp_trap", POISON)]
    assert dead[0][1].startswith("quarantined: integer beyond 64 bits in varbind " + POISON_OID)

    lines = [json.loads(x) for x in receiver.jsonl.read_text().splitlines() if x]
    jnumbers = Counter(e["fields"]["snmp.varbinds"][NUMBER_OID] for e in lines
                       if NUMBER_OID in e["fields"]["snmp.varbinds"])
    assert sorted(jnumbers) == list(range(1000)) and set(jnumbers.values()) == {1}
    assert len(lines) == 1002


def _wedge(receiver: Receiver) -> sqlite3.Connection:
    """Another connection takes the spool's write lock; then traps and an inform arrive."""
    lock = sqlite3.connect(receiver.spool, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    receiver.send([numbered(n) for n in range(5)])
    inform = receiver.inform(timeout=1, retries=0)
    inform.communicate(timeout=30)
    assert inform.returncode != 0  # not stored, so not acknowledged
    deadline = time.monotonic() + 30
    while receiver.metric("dcops_intake_queue_depth", source="snmp_trap") < 6:
        assert time.monotonic() < deadline, receiver.log.read_text()
        time.sleep(0.1)
    assert receiver.metric("dcops_intake_stored_total", source="snmp_trap") == 0
    assert receiver.metric("dcops_intake_oldest_unstored_age_seconds", source="snmp_trap") > 0
    assert receiver.metric("dcops_spool_dead_letters") == 0  # /metrics answers while wedged
    return lock


def test_sigterm_exits_under_5s_while_the_spool_is_locked(receiver: Receiver) -> None:
    lock = _wedge(receiver)
    try:
        took, rc = receiver.term()
    finally:
        lock.close()
    log = receiver.log.read_text()
    print(f"SIGTERM with the spool locked: exit {rc} in {took:.2f} s")
    assert took < 10.0, (took, log)
    assert rc == 1 and "6 traps not stored at shutdown" in log


def test_second_sigterm_exits_at_once(receiver: Receiver) -> None:
    lock = _wedge(receiver)
    try:
        took, rc = receiver.term(second_after=0.3)
    finally:
        lock.close()
    print(f"two SIGTERMs 0.3 s apart, spool locked: exit {rc} {took:.2f} s after the first")
    assert took < 4.0, (took, receiver.log.read_text())
    assert rc == 1
