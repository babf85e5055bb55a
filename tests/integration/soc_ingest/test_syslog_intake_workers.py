"""`dcops collect syslog --workers 2` as a real process: two TCP worker processes on one port
(one shared listening socket, each connection to the least loaded) storing through the main
process's spool writer, under hostile peers."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from syslog_cli import line, stored, syslogd, wait_count

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_s(pid: int) -> float:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def _blast(port: int, tag: str, n: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(line(tag, i) for i in range(n)))
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # until the server closes: everything was read


def test_two_workers_store_each_message_once_and_hostile_peers_block_nothing(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool.db"
    conns, per = 16, 4000
    with syslogd(spool, "--workers", "2", "--read-bytes", "131072",
                 "--max-message-bytes=4096") as d:
        workers = children(d.proc.pid)
        assert len(workers) == 2, workers
        cpu0 = {w: cpu_s(w) for w in workers}
        port = d.ports["tcp"]
        stop_slow = threading.Event()

        def slow_loris() -> None:  # one byte every 50 ms, never a newline while the test runs
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"<13>Nov 22 05:00:00 h slow: ")
                while not stop_slow.wait(0.05):
                    s.sendall(b"x")
                s.sendall(b"\n")
                s.shutdown(socket.SHUT_WR)
                s.recv(1)

        slow = threading.Thread(target=slow_loris)
        slow.start()
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"100 <13>Nov 22 05:00:00 h app: half an octet-counted frame")
        with socket.create_connection(("127.0.0.1", port)) as s:  # a 1 MB line, then garbage
            s.sendall(b"<13>Nov 22 05:00:00 h big: " + b"A" * (1 << 20) + b"\n")
            rng = random.Random(18)
            s.sendall(bytes(rng.randrange(256) for _ in range(20_000)).replace(b"\n", b"") + b"\n")
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
        blasters = [threading.Thread(target=_blast, args=(port, f"tcp{c}", per))
                    for c in range(conns)]
        for t in blasters:
            t.start()
        for t in blasters:
            t.join(120)
        # every numbered message, the 1 MB line and the garbage line, with the slow one still open
        assert wait_count(spool, conns * per + 2, 120) == conns * per + 2
        assert slow.is_alive()
        half.close()  # half a frame at the end of its stream: malformed, counted by its worker
        stop_slow.set()
        slow.join(30)
        assert wait_count(spool, conns * per + 3, 30) == conns * per + 3
        # Each worker hands its counters to /metrics on its own beat: wait for both workers'.
        deadline = time.monotonic() + 10
        while (d.metric("dcops_intake_dropped_total", source="syslog_tcp", reason="malformed") < 1
               or d.metric("dcops_intake_received_total", source="syslog_tcp")
               < conns * per + 3):
            assert time.monotonic() < deadline, (
                "the half frame or the last messages were not counted in /metrics")
            time.sleep(0.1)
        m = d.metrics()
        used = {w: cpu_s(w) - cpu0[w] for w in workers}
        took = d.term()
    assert d.proc.returncode == 0
    assert took < 5, f"SIGTERM took {took:.1f} s"
    stop_line = "".join(d.stderr).replace("\n", "")  # (the console may wrap it)
    assert f"'received': {conns * per + 3}," in stop_line, stop_line  # the workers' included
    assert all(u > 0.1 for u in used.values()), f"a worker got no connections: {used}"
    events = stored(spool)
    seen = Counter(e["raw"] for e in events)
    assert max(seen.values()) == 1  # each message once
    for c in range(conns):
        for i in range(0, per, 97):
            assert seen[line(f"tcp{c}", i).decode().rstrip("\n")] == 1
    big = [e for e in events if e["f"].get("process.name") == "big"]
    assert len(big) == 1 and big[0]["f"]["log.truncated"] is True
    assert big[0]["f"]["log.original_size"] == 27 + (1 << 20)
    assert m[("dcops_intake_received_total", (("source", "syslog_tcp"),))] == conns * per + 3
    assert m[("dcops_intake_truncated_total", (("source", "syslog_tcp"),))] >= 1
    assert m[("dcops_syslog_framing_errors_total", ())] >= 1


def test_sigterm_with_data_in_flight_stores_what_was_read_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    with syslogd(spool, "--workers", "2", "--udp-port=-1") as d:
        port = d.ports["tcp"]
        go = threading.Event()

        def flood(tag: str) -> None:
            with socket.create_connection(("127.0.0.1", port)) as s:
                go.set()
                try:
                    for k in range(0, 10_000_000, 1000):
                        s.sendall(b"".join(line(tag, i) for i in range(k, k + 1000)))
                except OSError:
                    return  # the collector stopped reading and closed: expected

        floods = [threading.Thread(target=flood, args=(f"f{c}",)) for c in range(4)]
        for t in floods:
            t.start()
        go.wait(10)
        wait_count(spool, 5000, 60)
        took = d.term()
        for t in floods:
            t.join(30)
    assert d.proc.returncode == 0
    assert took < 5, f"SIGTERM took {took:.1f} s with data in flight"
    # The collector closed each flooding connection mid-stream: the last line it had read of
    # one may be cut (stored as the connection's last frame). Everything before it: in order,
    # no gap, none twice.
    by_tag: dict[str, list[int]] = {}
    cut = 0
    for e in stored(spool):
        m = re.fullmatch(r"<38>Nov 22 05:00:00 web1 app\[\d+\]: (f\d) (\d+)", e["raw"])
        if m is None:
            cut += 1
            continue
        by_tag.setdefault(m[1], []).append(int(m[2]))
    assert cut <= 4
    assert sum(map(len, by_tag.values())) >= 5000
    for tag, ns in by_tag.items():
        whole = ns[:-1]  # (the last may be a cut number)
        assert sorted(whole) == whole == list(range(len(whole))), tag


def test_a_worker_that_dies_stops_the_collector_loudly(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    with syslogd(spool, "--workers", "2", "--udp-port=-1") as d:
        os.kill(children(d.proc.pid)[0], signal.SIGKILL)
        d.proc.wait(30)
    assert d.proc.returncode != 0
    assert any("ended unexpectedly" in x for x in d.stderr), "".join(d.stderr)
