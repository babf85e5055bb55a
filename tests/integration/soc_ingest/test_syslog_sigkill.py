"""SIGKILL of `dcops collect syslog` during numbered TCP intake, again and again: every message it
had read is stored, exactly once.

Plain TCP acknowledges nothing, so a sender cannot know what the server read: what it wrote but
was still in a kernel buffer (its own send buffer or the server's receive buffer) when the process
died is lost, and docs/soc-ingest.md says so. What is asserted, for every kill:
(a) no message is stored twice;
(b) per connection, the stored messages are a contiguous run from the first one sent on it: a
    read is stored before the next read, so nothing read is lost while later data is kept;
(c) the server's own count of messages read (`dcops_intake_received_total`, scraped before the
    kill) is covered by what is stored: nothing read waits in memory for long. The kill comes
    0.3 s after the scrape, or once the server reports that many stored when the machine is
    so loaded that its writer takes longer (the lag is printed); intake goes on meanwhile.
The senders use a small SO_SNDBUF, one paced and one as fast as the server takes it.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest
from soc_rsyslog import free_port
from syslog_cli import Syslogd, line, stored, wait_count

pytestmark = pytest.mark.integration

ROUNDS = 4


class Sender(threading.Thread):
    """Numbered messages on one connection from `first`; remembers what send() accepted."""

    def __init__(self, port: int, tag: str, first: int, *, paced: bool, limit: int = 0) -> None:
        super().__init__(daemon=True)
        self.port, self.tag, self.first, self.paced, self.limit = port, tag, first, paced, limit
        self.written = first - 1  # last number whose send completed
        self.attempted = first - 1  # last number handed to send (maybe partly written)
        self.stop = threading.Event()

    def run(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        try:
            s.connect(("127.0.0.1", self.port))
            n, k = self.first, 1 if self.paced else 50
            while not self.stop.is_set() and (not self.limit or n < self.first + self.limit):
                self.attempted = n + k - 1
                s.sendall(b"".join(line(self.tag, i) for i in range(n, n + k)))
                self.written, n = self.attempted, n + k
                if self.paced:
                    time.sleep(0.001)
            if self.limit:  # a clean end: the server has read everything once it closes
                s.shutdown(socket.SHUT_WR)
                s.settimeout(60)
                s.recv(1)
        except OSError:
            pass  # the server was killed
        finally:
            s.close()


def test_sigkill_during_tcp_intake_loses_nothing_it_read(tmp_path: Path) -> None:
    spool, port = tmp_path / "spool.db", free_port(socket.SOCK_STREAM)
    rng = random.Random(1313)
    nxt = {"paced": 0, "load": 0}
    segments: list[list[Sender]] = []
    received: list[float] = []
    lags: list[float] = []
    for _ in range(ROUNDS):
        d = Syslogd(spool, udp=False, tcp_port=port)
        try:
            senders = [Sender(port, tag, nxt[tag], paced=tag == "paced") for tag in nxt]
            for s in senders:
                s.start()
            time.sleep(rng.uniform(1.0, 2.5))
            received.append(d.metric("dcops_intake_received_total", source="syslog_tcp"))
            t0 = time.monotonic()
            time.sleep(0.3)
            while d.metric("dcops_intake_stored_total", source="syslog_tcp") < received[-1]:
                assert time.monotonic() - t0 < 20, "messages read 20 s ago are still not stored"
                time.sleep(0.05)
            lags.append(time.monotonic() - t0)
        finally:
            d.kill()
        for s in senders:
            s.stop.set()
            s.join(30)
            nxt[s.tag] = s.attempted + 1
        segments.append(senders)
    d = Syslogd(spool, udp=False, tcp_port=port)
    last = [Sender(port, tag, nxt[tag], paced=False, limit=2000) for tag in nxt]
    for s in last:
        s.start()
    for s in last:
        s.join(120)
    took = d.term()
    assert d.proc.returncode == 0, "".join(d.stderr)

    events = stored(spool)
    assert len({e["id"] for e in events}) == len(events)
    nums: dict[str, list[int]] = {tag: [] for tag in nxt}
    for e in events:
        tag, n = str(e["f"]["message"]).split()
        nums[tag].append(int(n))
    for tag, ns in nums.items():
        assert len(ns) == len(set(ns)), f"{tag}: a message stored twice"  # (a)
    report = []
    for r, senders in enumerate(segments):
        kept = 0
        for s in senders:
            got = sorted(n for n in nums[s.tag] if s.first <= n <= s.attempted)
            assert got == list(range(s.first, s.first + len(got))), (r, s.tag)  # (b)
            kept += len(got)
            lost = max(0, s.written - (s.first + len(got) - 1))
            report.append(f"round {r} {s.tag}: wrote {s.written - s.first + 1}, "
                          f"stored {len(got)}, lost in kernel buffers {lost}")
        assert kept >= received[r], (r, kept, received[r])  # (c)
        report.append(f"round {r}: read by dcops {lags[r]:.2f} s before SIGKILL "
                      f"{received[r]:.0f}, "
                      f"stored {kept}")
    for s in last:
        assert sorted(n for n in nums[s.tag] if n >= s.first) == list(
            range(s.first, s.first + 2000))
    assert wait_count(spool, len(events), 1) == len(events)
    print("\n" + "\n".join(report) + f"\nclean stop after the last round: {took:.2f} s")
