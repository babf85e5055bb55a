#!/usr/bin/env python3
"""Trap intake benchmark: dcops' receiver vs net-snmp snmptrapd, same v2c traps, one run.

    .venv/bin/python scripts/bench/snmp_traps.py [--burst 10000] [--rate 2000] [--seconds 5]

For each receiver: one burst sent as fast as the sender can, then a paced sustained rate; prints
received and lost. dcops runs as `dcops collect traps` publishing every event to the SOC spool
(SQLite, synchronous=FULL) and a JSONL file (fsynced batches);
snmptrapd logs one line per trap to a file (its default socket buffer: rmem_default).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from dcops.collectors.snmp import ber  # noqa: E402
from dcops.collectors.snmp.message import encode_community  # noqa: E402

COMMUNITY = b"bench-public"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def traps(n: int, start: int = 0) -> list[bytes]:
    """n distinct linkDown v2c traps (distinct request ids and ifIndex)."""
    out = []
    for i in range(start, start + n):
        vbs = [(ber.SYS_UPTIME_0, ber.Value(ber.TIMETICKS, i)),
               (ber.SNMP_TRAP_OID_0, ber.Value(ber.OID, "1.3.6.1.6.3.1.1.5.3")),
               (f"1.3.6.1.2.1.2.2.1.1.{i % 5000 + 1}", ber.Value(ber.INTEGER, i % 5000 + 1))]
        out.append(encode_community(1, COMMUNITY, ber.enc_response(i + 1, vbs, ber.TRAP_V2)))
    return out


def send(port: int, packets: list[bytes], rate: float | None = None) -> float:
    """Send packets; paced at `rate`/s when given. Returns seconds taken."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    t0 = time.perf_counter()
    for i, p in enumerate(packets):
        if rate:
            due = t0 + i / rate
            while (now := time.perf_counter()) < due:
                time.sleep(min(due - now, 0.001))
        s.send(p)
    s.close()
    return time.perf_counter() - t0


class Dcops:
    name = "dcops"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.stored = 0
        self.port, self.mport = free_port(), free_port(socket.SOCK_STREAM)
        # generous flap settings: the bench measures intake, not suppression
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from dcops.cli import main; main()", "collect", "traps",
             "-i", str(ROOT / "inventories" / "lab"), "--listen", f"127.0.0.1:{self.port}",
             "--metrics-listen", f"127.0.0.1:{self.mport}", "--community", COMMUNITY.decode(),
             "--flap-window", "0.001", "--events-out", str(work / "events.jsonl")],
            stdout=subprocess.DEVNULL, stderr=(work / "dcops.log").open("wb"), cwd=ROOT,
            env={**os.environ, "DCOPS_STATE_DIR": str(work / "state")})

    def count(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics",
                                        timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1
        return int(sum(float(m) for m in re.findall(
            r'^dcops_snmp_traps_received_total\{[^}]*\} (\S+)$', text, re.M)))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.stored = sum(1 for _ in (self.work / "events.jsonl").open())


class Snmptrapd:
    name = "snmptrapd"

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.log = work / "snmptrapd.out"
        conf = work / "snmptrapd.conf"
        conf.write_text(f"authCommunity log {COMMUNITY.decode()}\ndisableAuthorization no\n")
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-C", "-c", str(conf), "-Lf", str(self.log), "-F", "TRAP\n",
             f"udp:127.0.0.1:{self.port}"], env={**os.environ, "MIBS": ":"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count(self) -> int:
        return self.log.read_bytes().count(b"TRAP\n") if self.log.exists() else 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def settle(rx: Dcops | Snmptrapd, expected: int, timeout: float = 60.0) -> int:
    """Wait until the count stops growing (or reaches `expected`)."""
    deadline = time.monotonic() + timeout
    last, still = -1, 0
    while time.monotonic() < deadline:
        n = rx.count()
        if n >= expected:
            return n
        still = still + 1 if n == last else 0
        if still >= 8:  # 2 s without progress
            return n
        last = n
        time.sleep(0.25)
    return rx.count()


def bench(rx: Dcops | Snmptrapd, burst: int, rate: int, seconds: float) -> list[str]:
    deadline = time.monotonic() + 15
    while rx.count() < 0 or (isinstance(rx, Snmptrapd) and not _bound(rx.port)):
        if time.monotonic() > deadline:
            raise SystemExit(f"{rx.name} did not start")
        time.sleep(0.2)
    time.sleep(0.5)
    base = rx.count()
    took = send(rx.port, traps(burst))
    got = settle(rx, base + burst) - base
    lines = [f"{rx.name:10s} burst {burst} in {took:.3f}s ({burst / took:,.0f}/s sent): "
             f"received {got}, lost {burst - got}"]
    n = int(rate * seconds)
    base = rx.count()
    took = send(rx.port, traps(n, burst), rate)
    got = settle(rx, base + n) - base
    lines.append(f"{rx.name:10s} sustained {rate}/s for {took:.1f}s: sent {n}, received {got}, "
                 f"lost {n - got}")
    return lines


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burst", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcops-trapbench-"))
    out: list[str] = []
    for kind in (Dcops, Snmptrapd):
        rx = kind(work)
        try:
            out += bench(rx, args.burst, args.rate, args.seconds)
        finally:
            rx.stop()
        if isinstance(rx, Dcops):
            out.append(f"dcops      events stored durably (spool + JSONL): {rx.stored}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
