"""RELP from a real rsyslog (omrelp, Debian's rsyslog-relp) into `dcops collect syslog --relp-port`:
the collector answers only once a message is in the spool, so a SIGKILL of the collector in the
middle of the stream loses nothing; rsyslog sends the unanswered window again (duplicates at
most that window)."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from soc_rsyslog import free_port, rsyslog_module, rsyslogd
from syslog_cli import Syslogd, stored

pytestmark = pytest.mark.integration

N = 6000
WINDOW = 128  # librelp's default window (omrelp windowSize="0")


def _conf(work: Path, in_port: int, relp_port: int) -> str:
    """imtcp in, omrelp out; the action queue must hold what arrives while dcops restarts (the
    default 1,000 entries drop messages after a 2 s enqueue timeout: rsyslog's loss, not RELP's)."""
    assert rsyslog_module("omrelp.so") is not None, (
        "rsyslog-relp is not installed (apt-get install rsyslog-relp): RELP cannot be tested"
    )
    return f"""
global(workDirectory="{work}")
module(load="imtcp")
module(load="omrelp")
ruleset(name="to_dcops") {{
  action(type="omrelp" target="127.0.0.1" port="{relp_port}" timeout="5" conn.timeout="2"
         action.resumeRetryCount="-1" action.resumeInterval="1"
         queue.type="LinkedList" queue.size="100000")
}}
input(type="imtcp" address="127.0.0.1" port="{in_port}" ruleset="to_dcops")
"""


def _feed(port: int, n: int, pace: float) -> None:
    deadline = time.monotonic() + 30
    while True:  # rsyslog may still be opening its input
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            assert time.monotonic() < deadline, "rsyslog's imtcp did not open"
            time.sleep(0.1)
    with s:
        for i in range(0, n, 20):
            s.sendall(b"".join(b"<38>Nov 22 05:00:00 web1 app: relp %d\n" % k
                               for k in range(i, min(n, i + 20))))
            time.sleep(pace)


def _numbers(spool: Path) -> Counter[int]:
    return Counter(int(str(e["f"]["message"]).split()[1]) for e in stored(spool)
                   if str(e["f"].get("message", "")).startswith("relp "))


def test_sigkill_of_the_collector_loses_nothing_rsyslog_sent_over_relp(tmp_path: Path) -> None:
    spool, relp, feed = tmp_path / "spool.db", free_port(socket.SOCK_STREAM), free_port(
        socket.SOCK_STREAM)
    args = (f"--relp-port={relp}",)
    d = Syslogd(spool, *args, udp=False, tcp=False)
    kills = 0
    try:
        with rsyslogd(_conf(tmp_path, feed, relp), tmp_path):
            feeder = threading.Thread(target=_feed, args=(feed, N, 0.01))
            feeder.start()
            rng = random.Random(4242)
            for _ in range(2):
                time.sleep(rng.uniform(0.8, 1.6))
                before = sum(_numbers(spool).values())
                d.kill()
                kills += 1
                assert before > 0, "nothing arrived over RELP before the kill"
                time.sleep(0.5)
                d = Syslogd(spool, *args, udp=False, tcp=False)
            feeder.join(120)
            deadline = time.monotonic() + 90
            while len(_numbers(spool)) < N and time.monotonic() < deadline:
                time.sleep(0.2)
            took = d.term()
    finally:
        if d.proc.poll() is None:
            d.kill()
    got = _numbers(spool)
    missing = sorted(set(range(N)) - set(got))
    twice = sum(c - 1 for c in got.values())
    print(f"\nRELP: {N} messages through rsyslog omrelp, collector SIGKILLed {kills} times: "
          f"{len(got)} distinct stored, {len(missing)} missing, {twice} stored twice "
          f"(resent window); stop {took:.2f} s")
    assert not missing, missing[:20]
    assert twice <= kills * WINDOW
    assert d.proc.returncode == 0
