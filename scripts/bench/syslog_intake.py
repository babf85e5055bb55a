#!/usr/bin/env python3
"""Syslog intake over TCP: messages per second with zero loss, dcops against rsyslog, one run.

dcops: `dcops collect syslog` (TCP, parse + normalise + durable SQLite spool, synchronous=FULL);
peer: rsyslogd with imtcp writing to a file (no parsing beyond its own, no fsync per message).
Both receive the same newline-framed RFC 3164 sshd messages over the same number of connections;
the figure is messages / seconds from the first byte sent to the last message stored, and the
run fails if a single message is missing.

    .venv/bin/python scripts/bench/syslog_intake.py --messages 200000 --connections 4
"""

from __future__ import annotations

import argparse
import contextlib
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


def run_dcops(tmp: Path, blobs: list[bytes], n: int) -> tuple[float, int]:
    port = free_port()
    spool = tmp / "spool.db"
    exe = Path(sys.executable).with_name("dcops")
    proc = subprocess.Popen(
        [
            str(exe),
            "collect",
            "syslog",
            "--udp-port",
            "-1",
            "--tcp-port",
            str(port),
            "--spool",
            str(spool),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        start = blast(port, blobs)

        def newest() -> int:  # cheap progress probe; the exact count is taken once at the end
            try:
                with contextlib.closing(sqlite3.connect(spool, timeout=30)) as db:
                    return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            except sqlite3.Error:
                return 0

        end, _ = wait_count(newest, n, 600)
        with contextlib.closing(sqlite3.connect(spool, timeout=30)) as db:
            got = int(db.execute("SELECT COUNT(DISTINCT id) FROM events").fetchone()[0])
        return n / (end - start), got
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def run_rsyslog(tmp: Path, blobs: list[bytes], n: int) -> tuple[float, int] | None:
    if not shutil.which("rsyslogd"):
        return None
    port = free_port()
    out = tmp / "rsyslog.out"
    conf = tmp / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{tmp}")\nmodule(load="imtcp")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{port}")\n'
        f'action(type="omfile" file="{out}")\n'
    )
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp / "rs.pid")],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        start = blast(port, blobs)

        def count() -> int:
            try:
                with out.open("rb") as f:
                    return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            except OSError:
                return 0

        end, got = wait_count(count, n, 600)
        return n / (end - start), got
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=4)
    a = ap.parse_args()
    blobs = [payload(a.messages, i, a.connections) for i in range(a.connections)]
    print(
        f"syslog TCP intake: {a.messages} messages over {a.connections} connections "
        f"({sum(map(len, blobs)) / 1e6:.1f} MB)"
    )
    ok = True
    with tempfile.TemporaryDirectory() as d:
        rate, got = run_dcops(Path(d), blobs, a.messages)
        ok &= got == a.messages
        print(
            f"  dcops (parse + durable spool): {rate:10.0f} msg/s  stored {got}/{a.messages}"
            f"  loss {a.messages - got}"
        )
    with tempfile.TemporaryDirectory() as d:
        peer = run_rsyslog(Path(d), blobs, a.messages)
        if peer is None:
            print("  rsyslog: not installed (apt-get install rsyslog)")
        else:
            prate, pgot = peer
            print(
                f"  rsyslog (imtcp -> omfile):      {prate:10.0f} msg/s  stored {pgot}/"
                f"{a.messages}  loss {a.messages - pgot}"
            )
            print(f"  ratio dcops/rsyslog: {rate / prate:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
