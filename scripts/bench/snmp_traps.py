#!/usr/bin/env python3
"""Trap intake race: dcops' receiver vs net-snmp snmptrapd, same v2c traps, same receive buffer.

    .venv/bin/python scripts/bench/snmp_traps.py [--seconds 30] [--start-rate 1000] [--repeats 1]

Both receivers get the same socket receive buffer (--recv-buffer, default 4 MiB): snmptrapd via
`serverRecvBuf` (snmp.conf(5), its documented knob), dcops via `collect traps --recv-buffer`; the
effective kernel buffers are read back with `ss -ulm` and the run refuses to race if they differ
(snmptrapd's setsockopt is capped at net.core.rmem_max, so keep the size at or below it).

For each receiver a search finds the highest sustained rate it holds with zero loss over
--seconds (default 30): the rate doubles from --start-rate until a step loses traps, then
bisection between the last clean and the first lossy rate until they are within 10 %. A step
where the sender cannot keep the pace is reported as sender-limited, not as a receiver figure.
The order of the receivers alternates per repeat (fairrace.orders); machine load and a CPU
calibration figure are printed at the start and the end.

dcops runs as `dcops collect traps` publishing every event to the SOC spool (SQLite,
synchronous=FULL) and a JSONL file (fsynced batches); snmptrapd logs one line per trap to a file.
A burst (sent as fast as the sender can) is kept as a second figure.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fairrace import Stat, machine_line, orders, verdict  # noqa: E402

from dcops.collectors.snmp import ber  # noqa: E402
from dcops.collectors.snmp.message import encode_community  # noqa: E402

COMMUNITY = b"bench-public"
POOL = 50_000  # distinct pre-encoded traps, cycled (encoding is ~25k traps/s: not in the loop)


def reserve_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free now (bound then released; the receiver binds it right after)."""
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


def send(port: int, pool: list[bytes], n: int, rate: float | None = None) -> float:
    """Send n packets cycling the pool; paced at `rate`/s when given. Returns seconds taken."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    t0 = time.perf_counter()
    size = len(pool)
    for i in range(n):
        if rate:
            due = t0 + i / rate
            while (now := time.perf_counter()) < due:
                time.sleep(min(due - now, 0.001))
        s.send(pool[i % size])
    s.close()
    return time.perf_counter() - t0


def socket_rcvbuf(port: int) -> int:
    """The kernel's receive buffer (skmem rb) of the UDP socket bound to 127.0.0.1:port."""
    out = subprocess.run(["ss", "-Hulmn", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"rb(\d+)", out)
    if not m:
        raise SystemExit(f"no UDP socket on port {port} in `ss -ulm`: {out!r}")
    return int(m.group(1))


class Dcops:
    name = "dcops"

    def __init__(self, work: Path, recv_buffer: int) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="dcops-", dir=work))  # one per repeat
        self.stored = 0
        self.port, self.mport = reserve_port(), reserve_port(socket.SOCK_STREAM)
        # generous flap settings: the bench measures intake, not suppression
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from dcops.cli import main; main()", "collect", "traps",
             "-i", str(ROOT / "inventories" / "lab"), "--listen", f"127.0.0.1:{self.port}",
             "--metrics-listen", f"127.0.0.1:{self.mport}", "--community", COMMUNITY.decode(),
             "--flap-window", "0.001", "--recv-buffer", str(recv_buffer),
             "--events-out", str(self.work / "events.jsonl")],
            stdout=subprocess.DEVNULL, stderr=(self.work / "dcops.log").open("wb"), cwd=ROOT,
            env={**os.environ, "DCOPS_STATE_DIR": str(self.work / "state"),
                 "PYTHONPATH": str(ROOT / "src")})

    def ready(self) -> bool:
        return self.count() >= 0

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
        events = self.work / "events.jsonl"
        self.stored = sum(1 for _ in events.open()) if events.exists() else 0


class Snmptrapd:
    name = "snmptrapd"

    def __init__(self, work: Path, recv_buffer: int) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="snmptrapd-", dir=work))
        self.port = reserve_port()
        self.log = self.work / "snmptrapd.out"
        conf = self.work / "snmptrapd.conf"
        # serverRecvBuf is an snmp.conf(5) directive: "[snmp]" lets snmptrapd.conf carry it
        conf.write_text(f"authCommunity log {COMMUNITY.decode()}\ndisableAuthorization no\n"
                        f"[snmp] serverRecvBuf {recv_buffer}\n")
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-C", "-c", str(conf), "-Lf", str(self.log), "-F", "TRAP\n",
             f"udp:127.0.0.1:{self.port}"],
            env={**os.environ, "MIBS": ":", "SNMPCONFPATH": str(self.work)},  # no /etc files
            stdout=subprocess.DEVNULL, stderr=(self.work / "stderr.log").open("wb"))

    def ready(self) -> bool:
        return _bound(self.port)

    def count(self) -> int:
        return self.log.read_bytes().count(b"TRAP\n") if self.log.exists() else 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


Receiver = Dcops | Snmptrapd


def settle(rx: Receiver, expected: int, timeout: float = 60.0) -> int:
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


@dataclass
class Step:
    rate: int
    sent: int
    received: int
    took: float

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def sender_limited(self) -> bool:
        return self.took > self.sent / self.rate * 1.05


def step(rx: Receiver, pool: list[bytes], rate: int, seconds: float) -> Step:
    n = int(rate * seconds)
    base = rx.count()
    took = send(rx.port, pool, n, rate)
    got = settle(rx, base + n) - base
    st = Step(rate, n, got, took)
    flag = " SENDER-LIMITED" if st.sender_limited else ""
    print(f"  {rx.name:10s} {rate:7d}/s for {took:5.1f}s: sent {n}, received {got}, "
          f"lost {st.lost}{flag}", flush=True)
    return st


def search(probe: Callable[[int], Step], start: int) -> tuple[int, bool]:
    """Highest zero-loss rate (doubling or halving, then bisection to 10 %); flag: sender-limited.

    `probe(rate)` runs one sustained step. 0 when even 50/s loses traps.
    """
    good, bad = 0, 0
    rate = start
    while True:
        st = probe(rate)
        if st.sender_limited:
            return good, True
        if st.lost:
            bad = rate
            if good or rate <= 50:
                break
            rate //= 2  # the start rate is already too high: look below it
            continue
        if bad:  # found going down
            good = rate
            break
        good, rate = rate, rate * 2
    while good and bad - good > good * 0.1:
        mid = (good + bad) // 2
        st = probe(mid)
        if st.sender_limited:
            return good, True
        good, bad = (mid, bad) if not st.lost else (good, mid)
    return good, False


def wait_ready(rx: Receiver) -> None:
    deadline = time.monotonic() + 15
    while not rx.ready():
        if time.monotonic() > deadline or rx.proc.poll() is not None:
            raise SystemExit(f"{rx.name} did not start (see {rx.work})")
        time.sleep(0.2)
    time.sleep(0.5)


def burst(rx: Receiver, pool: list[bytes], n: int) -> str:
    base = rx.count()
    took = send(rx.port, pool, n)
    got = settle(rx, base + n) - base
    return (f"{rx.name:10s} burst {n} in {took:.3f}s ({n / took:,.0f}/s sent): "
            f"received {got}, lost {n - got}")


def _bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0,
                    help="duration of each sustained-rate step (default 30)")
    ap.add_argument("--start-rate", type=int, default=1000)
    ap.add_argument("--recv-buffer", type=int, default=4 * 1024 * 1024,
                    help="receive buffer for both receivers, bytes (<= net.core.rmem_max)")
    ap.add_argument("--burst", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=1, help="searches per receiver")
    args = ap.parse_args()
    print(machine_line("start"), flush=True)
    work = Path(tempfile.mkdtemp(prefix="dcops-trapbench-"))
    pool = traps(POOL)
    best: dict[str, list[float]] = {"dcops": [], "snmptrapd": []}
    limited: set[str] = set()
    bursts: list[str] = []
    for order in orders(["dcops", "snmptrapd"], args.repeats):
        for name in order:
            rx: Receiver = (Dcops if name == "dcops" else Snmptrapd)(work, args.recv_buffer)
            try:
                wait_ready(rx)
                rb = socket_rcvbuf(rx.port)
                print(f"{name}: socket receive buffer {rb} bytes (ss rb)", flush=True)
                if rb < args.recv_buffer:
                    raise SystemExit(f"{name} got a {rb}-byte buffer, asked "
                                     f"{args.recv_buffer}: raise net.core.rmem_max or lower "
                                     "--recv-buffer; the race would not be fair")
                rate, lim = search(lambda r, rx=rx: step(rx, pool, r, args.seconds),
                                   args.start_rate)
                best[name].append(rate)
                if lim:
                    limited.add(name)
                bursts.append(burst(rx, pool, args.burst))
            finally:
                rx.stop()
            if isinstance(rx, Dcops):
                bursts.append(f"dcops      events stored durably (spool + JSONL): {rx.stored}")
    print(machine_line("end"))
    print(f"\nhighest zero-loss sustained rate over {args.seconds:.0f} s steps, v2c traps/s, "
          f"receive buffer {args.recv_buffer} bytes each:")
    stats = [Stat(n, tuple(v), "traps/s") for n, v in best.items()]
    for st in stats:
        note = "  (sender-limited: the receiver held every rate the sender reached)" \
            if st.name in limited else ""
        print(st.line() + note)
    print(verdict(stats[0], stats[1]))
    print("\n".join(bursts))


if __name__ == "__main__":
    main()
