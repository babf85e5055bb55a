#!/usr/bin/env python3
"""Syslog intake over TCP: messages per second with zero loss, dcops against rsyslog, one run.

dcops: `dcops collect syslog --workers N --read-bytes 131072` (TCP on one listening socket shared
by N worker processes, each connection to the least loaded; parse + normalise + encode in the
workers, one spool writer in the
main process, one SQLite transaction per group of batches with synchronous=FULL: stored means
fsynced).
Peer: rsyslogd tuned as its own "Receiving massive amounts of messages with high performance"
example says (imptcp with helper threads, a fixedArray ruleset queue dequeuing 4096 at a time,
omfile with a 64k buffer and asyncWriting). One change: flushOnTXEnd on (the example has off),
else the last partial buffer waits up to omfile's flushInterval (1 s) and the clock would charge
rsyslog that second; it still only writes, never fsyncs, and parses the syslog header only.
Both receive the same newline-framed RFC 3164 sshd messages over the same connections; the
figure is messages / seconds from the first byte sent to the last message stored, and a round
fails if a single message is missing. Rounds alternate who goes first (fairrace.py); the
machine's load and a calibration figure are printed before and after, with the median and
min-max of each side, and a ratio only when the ranges do not overlap.

    .venv/bin/python scripts/bench/syslog_intake.py --messages 200000 --connections 8 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairrace import Stat, machine_line, orders, verdict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(n: int, part: int, parts: int) -> bytes:
    return b"".join(
        b"<38>Nov 22 05:00:%02d web%d sshd[%d]: Failed password for invalid user u%d from "
        b"10.%d.%d.%d port %d ssh2\n"
        % (i % 60, i % 9, i, i, i % 200, i // 200 % 250, i % 250, 1024 + i % 60000)
        for i in range(part, n, parts)
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its child processes (dcops' TCP workers)."""
    total = 0.0
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for p in [pid, *map(int, kids)]:
            rest = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return total


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port}")


def blast(port: int, blobs: list[bytes]) -> float:
    """Send each blob over its own connection in parallel; returns the start time."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in blobs]
    start = time.monotonic()

    def send(s: socket.socket, b: bytes) -> None:
        s.sendall(b)
        s.shutdown(socket.SHUT_WR)

    threads = [threading.Thread(target=send, args=sb) for sb in zip(socks, blobs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start


def wait_count(count: Callable[[], int], n: int, timeout: float) -> tuple[float, int]:
    deadline = time.monotonic() + timeout
    got = 0
    last_change, last = time.monotonic(), -1
    while time.monotonic() < deadline:
        got = count()
        if got >= n:
            return time.monotonic(), got
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > 20:
            break  # stalled: report the loss
        time.sleep(0.05)
    return time.monotonic(), got


def run_dcops(tmp: Path, blobs: list[bytes], n: int, workers: int,
              read_bytes: int = 131_072) -> tuple[float, int, float]:
    port = free_port()
    spool = tmp / "spool.db"
    exe = Path(sys.executable).with_name("dcops")
    proc = subprocess.Popen(
        [str(exe), "collect", "syslog", "--udp-port", "-1", "--tcp-port", str(port),
         "--workers", str(workers), "--read-bytes", str(read_bytes), "--spool", str(spool)],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        time.sleep(0.3)  # the workers' own start-up is not the intake's CPU
        cpu0 = cpu_seconds(proc.pid)
        start = blast(port, blobs)

        def newest() -> int:  # cheap progress probe; the exact count is taken once at the end
            try:
                with contextlib.closing(sqlite3.connect(spool, timeout=30)) as db:
                    return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            except sqlite3.Error:
                return 0

        end, _ = wait_count(newest, n, 600)
        cpu = cpu_seconds(proc.pid) - cpu0
        with contextlib.closing(sqlite3.connect(spool, timeout=30)) as db:
            got = int(db.execute("SELECT COUNT(DISTINCT id) FROM events").fetchone()[0])
        return n / (end - start), got, cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


RSYSLOG_CONF = """global(workDirectory="{tmp}")
module(load="imptcp" threads="{threads}")
input(type="imptcp" address="127.0.0.1" port="{port}" ruleset="bench")
ruleset(name="bench" queue.type="fixedArray" queue.size="250000"
        queue.dequeueBatchSize="4096" queue.workerThreads="{threads}"
        queue.workerThreadMinimumMessages="60000") {{
    action(type="omfile" file="{out}" ioBufferSize="64k" flushOnTXEnd="on"
           asyncWriting="on")
}}
"""


def run_rsyslog(tmp: Path, blobs: list[bytes], n: int, threads: int
                ) -> tuple[float, int, float]:
    port = free_port()
    out = tmp / "rsyslog.out"
    conf = tmp / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(tmp=tmp, port=port, out=out, threads=threads))
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp / "rs.pid")],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        cpu0 = cpu_seconds(proc.pid)
        start = blast(port, blobs)

        def count() -> int:
            try:
                with out.open("rb") as f:
                    return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            except OSError:
                return 0

        end, got = wait_count(count, n, 600)
        return n / (end - start), got, cpu_seconds(proc.pid) - cpu0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="dcops TCP worker processes; rsyslog gets as many imptcp threads")
    ap.add_argument("--read-bytes", type=int, default=131_072,
                    help="dcops --read-bytes (bytes per read, stored before the next read)")
    a = ap.parse_args()
    if not shutil.which("rsyslogd"):
        print("rsyslog: not installed (apt-get install rsyslog): no race without the peer")
        return 1
    blobs = [payload(a.messages, i, a.connections) for i in range(a.connections)]
    print(f"syslog TCP intake: {a.messages} messages over {a.connections} connections "
          f"({sum(map(len, blobs)) / 1e6:.1f} MB), {a.rounds} rounds, order alternating; "
          f"dcops --workers {a.workers} --read-bytes {a.read_bytes}, rsyslog imptcp threads "
          f"{a.workers}")
    print(machine_line("before"))
    rates: dict[str, list[float]] = {"dcops": [], "rsyslog": []}
    per_cpu: dict[str, list[float]] = {"dcops": [], "rsyslog": []}
    ok = True
    for r, order in enumerate(orders(["dcops", "rsyslog"], a.rounds), 1):
        for name in order:
            with tempfile.TemporaryDirectory() as d:
                if name == "dcops":
                    rate, got, cpu = run_dcops(Path(d), blobs, a.messages, a.workers,
                                               a.read_bytes)
                else:
                    rate, got, cpu = run_rsyslog(Path(d), blobs, a.messages, a.workers)
            ok &= got == a.messages
            rates[name].append(rate)
            per_cpu[name].append(a.messages / cpu if cpu else 0.0)
            print(f"  round {r} {name:8s} {rate:10.0f} msg/s  stored {got}/{a.messages}  "
                  f"loss {a.messages - got}  CPU {cpu:.2f} s ({1e6 * cpu / a.messages:.1f} us/msg)"
                  f"  load {os.getloadavg()[0]:.2f}", flush=True)
    dc, rs = Stat("dcops", tuple(rates["dcops"]), "msg/s"), Stat(
        "rsyslog", tuple(rates["rsyslog"]), "msg/s")
    print(dc.line())
    print(rs.line())
    print(verdict(dc, rs))
    dcc, rsc = (Stat(k, tuple(per_cpu[k]), "msg/CPU-s") for k in ("dcops", "rsyslog"))
    print(dcc.line())
    print(rsc.line())
    print(verdict(dcc, rsc))
    print(f"dcops CPU per message (median): {1e6 / dcc.median:.1f} us; 100,000 msg/s on "
          f"{os.cpu_count()} cores leaves at most {1e6 * (os.cpu_count() or 1) / 100_000:.0f} us "
          "for the whole path (sender included)" if dcc.median else "")
    print("durability: dcops answers a read only after its SQLite transaction is fsynced "
          "(synchronous=FULL); rsyslog's omfile (asyncWriting, no flush) never fsyncs")
    print(machine_line("after"))
    print("zero loss in every round" if ok else "LOSS: some round did not store every message")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
