#!/usr/bin/env python3
"""Intake fuzz campaign: hostile input against the real collectors, with numbered canaries.

    .venv/bin/python scripts/bench/fuzz_intake.py [--total 1000000] [--seed 13] [--json out.json]

Starts `dcops collect traps`, `dcops collect syslog` (UDP, TCP, TLS with a throwaway openssl
certificate), `dcops collect logs` and `dcops collect wazuh alerts` as processes on loopback, each
with its own spool in a temporary directory, and sends them `--total` hostile inputs (traps
v1/v2c/v3, syslog lines and streams, log lines with rotation races, alerts.json lines) with a
numbered valid canary after every `--canary-every` of them on every path. Then it waits for the
canaries, scrapes /metrics, stops every process with SIGTERM and reads the spools back.

Exit status 1 if a canary is missing or stored twice, a process died, RSS grew more than
`--rss-bound-mib` or a SIGTERM took `--shutdown-bound` seconds or more. UDP: dcops cannot store
what the kernel dropped; the sender is paced on the collector's socket queue so nothing should
be, and a canary whose sendto raised the socket's kernel drop counter is reported as a kernel
drop (still a failure: the pacing was too fast), separately from a loss inside dcops.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "src")]

from fuzzkit import files, udp  # noqa: E402
from fuzzkit.ledger import Ledger  # noqa: E402
from fuzzkit.procs import ROOT, Collector, free_port, options, rcvbuf_errors, udp_socket, wait_tcp  # noqa: E402
from fuzzkit.report import Outcome, canary_figures, dropped_by_reason, render, verdict  # noqa: E402
from fuzzkit.snmpgen import TrapGen  # noqa: E402
from fuzzkit.streams import StreamDriver  # noqa: E402
from fuzzkit.textgen import LineGen, WazuhGen, syslog_canary, wazuh_canary  # noqa: E402
from fuzzkit.verify import LiveTally, read_jsonl, read_spool, settle  # noqa: E402

from dcops.collectors.snmp import ber  # noqa: E402
from dcops.collectors.snmp.message import decode  # noqa: E402
from dcops.collectors.snmp.usm import UsmUser  # noqa: E402

SHARES = {"traps": 0.35, "syslog_udp": 0.20, "syslog_tcp": 0.20, "syslog_tls": 0.07,
          "logfile": 0.11, "wazuh": 0.07}
COMMUNITY = "fuzz-public"
LAB = ROOT / "inventories" / "lab"
INFORM_RID = 10_000_000
PATHS = {"traps": ["traps_v1", "traps_v2c", "traps_v3", "traps_inform"],
         "syslog": ["syslog_udp", "syslog_tcp", "syslog_tls"], "logs": ["logfile"],
         "wazuh": ["wazuh"]}


def lab_user() -> UsmUser:
    """The lab's v3 authPriv device user (its Vault secrets), which the receiver accepts."""
    from dcops.inventory import load_inventory

    c = load_inventory(LAB).devices["lab-dc1-core-sw1"].snmp
    if c is None or not (c.user and c.auth_key and c.priv_key):
        raise SystemExit(f"{LAB}: lab-dc1-core-sw1 has no SNMPv3 authPriv user")
    return UsmUser(c.user, c.auth_protocol or "SHA", c.auth_key.reveal(),
                   c.priv_protocol or "AES", c.priv_key.reveal())


def make_cert(work: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """A throwaway self-signed server certificate for 127.0.0.1 (openssl), and a client context."""
    cert, key = work / "tls-cert.pem", work / "tls-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=dcops-fuzz", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.create_default_context(cafile=str(cert))
    return cert, key, ctx


def collectors(work: Path, cert: Path, key: Path, syslog_workers: int = 1
               ) -> dict[str, Collector]:
    """The four collector commands, with the options their CLI has today (the syslog one with
    `syslog_workers` TCP worker processes; RSS and CPU are then the main process's)."""
    from dcops.cli import collect_events, collect_snmp

    def opt(cmd: object, name: str, *value: str) -> list[str]:
        return [name, *value] if name in options(cmd) else []

    def metrics(cmd: object) -> tuple[list[str], int | None]:
        port = free_port()
        args = opt(cmd, "--metrics-listen", f"127.0.0.1:{port}")
        return args, port if args else None

    out: dict[str, Collector] = {}
    m, mp = metrics(collect_snmp.traps)
    tport = free_port(socket.SOCK_DGRAM)
    out["traps"] = Collector("traps", [
        "traps", "-i", str(LAB), "--listen", f"127.0.0.1:{tport}", *m, "--community", COMMUNITY,
        "--spool", str(work / "traps.db"), "--events-out", str(work / "traps.jsonl"),
        *opt(collect_snmp.traps, "--max-message-bytes", "65536")], work, mp)
    out["traps"].marks["port"] = tport
    m, mp = metrics(collect_events.syslog)
    u, t, s = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    out["syslog"] = Collector("syslog", [
        "syslog", "--listen", "127.0.0.1", "--udp-port", str(u), "--tcp-port", str(t),
        "--tls-port", str(s), "--tls-cert", str(cert), "--tls-key", str(key), *m,
        "--spool", str(work / "syslog.db"),
        *opt(collect_events.syslog, "--max-message-bytes", "65536"),
        *(["--workers", str(syslog_workers)] if syslog_workers > 1 else [])], work, mp)
    out["syslog"].marks.update(udp=u, tcp=t, tls=s)
    for name, cmd, argv in (("logs", collect_events.logs, ["logs"]),
                            ("wazuh", collect_events.wazuh_alerts, ["wazuh", "alerts"])):
        m, mp = metrics(cmd)
        target = work / ("auth.log" if name == "logs" else "alerts.json")
        target.touch()
        out[name] = Collector(name, [
            *argv, str(target), "--interval", "0.05", "--spool", str(work / f"{name}.db"), *m,
            *opt(cmd, "--max-message-bytes", "65536")], work, mp)
    return out


def ready(procs: dict[str, Collector], work: Path, timeout: float = 90.0) -> bool:
    """Every collector listening (metrics, TCP/TLS ports) or, for tailers, its spool open."""
    deadline = time.monotonic() + timeout
    for c in procs.values():
        ok = not c.metrics_port or c.wait_metrics(timeout)
        for k in ("tcp", "tls"):
            if k in c.marks:
                ok = ok and wait_tcp(int(c.marks[k]), max(1.0, deadline - time.monotonic()))
        while ok and c.name in ("logs", "wazuh") and not (work / f"{c.name}.db").exists():
            ok = c.alive() and time.monotonic() < deadline
            time.sleep(0.1)
        if not ok or not c.alive():
            print(f"{c.name}: not ready in {timeout:.0f} s; log:\n{c.log.read_text()[-3000:]}")
            return False
    return True


def inform_acks(sock: socket.socket) -> set[int]:
    """Request ids of the inform responses waiting on the canary socket."""
    sock.setblocking(False)
    acked: set[int] = set()
    while True:
        try:
            data = sock.recv(65535)
        except OSError:
            return acked
        try:
            msg = decode(data)
        except (ValueError, IndexError, TypeError):
            continue
        if msg.pdu.pdu_type == ber.RESPONSE:
            acked.add(msg.pdu.request_id - INFORM_RID)


class Campaign:
    """The collectors, the generators and the ledger of one run."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.ledger = Ledger()
        self.counts = {k: int(args.total * v) for k, v in SHARES.items()}
        self.counts["traps"] += args.total - sum(self.counts.values())
        for k in self.counts:
            if args.only and k not in args.only.split(","):
                self.counts[k] = 0
        self.idle = args.idle if args.idle >= 0 else max(50, min(2500, args.total // 400))
        cert, key, self.client_tls = make_cert(work)
        self.procs = collectors(work, cert, key, args.syslog_workers)
        self.gen = TrapGen(random.Random(args.seed * 7 + 1), COMMUNITY.encode(), lab_user())
        self.tallies = {n: LiveTally(work / f"{n}.db") for n in self.procs}
        self.trap_port = int(self.procs["traps"].marks["port"])
        self.udp_port = int(self.procs["syslog"].marks["udp"])
        self.csock = udp.udp_socket_to(self.trap_port)  # trap canaries; inform acks come back
        self.csock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.usock = udp.udp_socket_to(self.udp_port)
        self.streams: list[StreamDriver] = []
        self._trap_n = 0

    def deadline(self, phase: str) -> float:
        """When a phase gives up on an unresponsive collector (it then fails the run)."""
        return time.monotonic() + float(self.args.phase_timeout) + self.counts.get(phase, 0) / 50

    def trap_canary(self, sock: socket.socket, pacer: udp.Pacer) -> None:
        """v1, v2c, v3 authPriv and v2c inform canaries in turn."""
        k = ("v1", "v2c", "v3", "inform")[self._trap_n % 4]
        self._trap_n += 1
        udp.send_canary(sock, self.trap_port, pacer, self.ledger, f"traps_{k}",
                        lambda mark, n: self.gen.canary(k, mark, INFORM_RID + n))

    def syslog_canary(self, sock: socket.socket, pacer: udp.Pacer) -> None:
        """A canary datagram on the syslog UDP port."""
        udp.send_canary(sock, self.udp_port, pacer, self.ledger, "syslog_udp", syslog_canary)

    def warm_up(self) -> None:
        """Canaries on the trap path until stored: the receiver and its sinks are working."""
        udp.blast(self.trap_port, 0, 1, self.procs["traps"], "snmp_trap", self.ledger,
                  self.gen.hostile, self.trap_canary, self.csock, self.deadline("warm-up"))
        settle([(self.tallies["traps"], PATHS["traps"])], self.ledger, 30, 90)

    def phases(self) -> None:
        """Three groups (traps; syslog UDP, TCP, TLS; log file and Wazuh), at once or in turn."""
        groups = [self.trap_group, self.syslog_group, self.file_group]
        if self.args.serial:
            for g in groups:
                g()
            return
        errors: list[BaseException] = []

        def run(g: Callable[[], None]) -> None:
            try:
                g()
            except BaseException as exc:  # re-raised by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(g,), name=g.__name__) for g in groups]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def trap_group(self) -> None:
        """Traps v1/v2c/v3 and informs."""
        self.phase("traps", lambda d: udp.blast(
            self.trap_port, self.counts["traps"], self.args.canary_every, self.procs["traps"],
            "snmp_trap", self.ledger, self.gen.hostile, self.trap_canary, self.csock, d))

    def syslog_group(self) -> None:
        """Syslog over UDP, then TCP, then TLS (one server process)."""
        c, every, sy = self.counts, self.args.canary_every, self.procs["syslog"]
        rng = random.Random(self.args.seed * 7 + 2)
        lines = LineGen(rng)
        drivers = {name: StreamDriver(int(sy.marks[name[7:]]), tls, name, rng, lines, self.ledger)
                   for name, tls in (("syslog_tcp", None), ("syslog_tls", self.client_tls))}
        for drv in drivers.values():  # forwarders connected before the attack starts
            drv.connect()
            self.streams.append(drv)
        self.phase("syslog_udp", lambda d: udp.blast(
            self.udp_port, c["syslog_udp"], every, sy, "syslog_udp", self.ledger,
            lambda: lines.line(stream_safe=False, limit=65000), self.syslog_canary,
            self.usock, d))
        for name, idle, ratio in (("syslog_tcp", self.idle, 0.02),
                                  ("syslog_tls", self.idle // 4, 0.01)):
            self.phase(name, functools.partial(_stream_phase, drivers[name], c[name], every,
                                               idle, ratio))

    def file_group(self) -> None:
        """The log tailer, then the Wazuh alerts reader, with rotations while writing."""
        rng = random.Random(self.args.seed * 7 + 3)
        lines = LineGen(rng)
        huge = max(1, self.args.total // 300_000)
        wz = WazuhGen(rng, lines)
        for name, col, target, hostile, canary, ct in (
                ("logfile", self.procs["logs"], self.work / "auth.log",
                 lambda: lines.line(stream_safe=True), syslog_canary, True),
                ("wazuh", self.procs["wazuh"], self.work / "alerts.json", wz.line, wazuh_canary,
                 False)):
            w = files.Writer(target, files.Checkpoint(self.work / f"{col.name}.db", target),
                             self.ledger, col.alive)
            self.phase(name, functools.partial(
                files.feed, w, self.counts[name], self.args.canary_every, rng, self.ledger,
                name, hostile, canary, col.name, ct, huge))
            w.close()
            self.ledger.notes.append(f"{name}: {w.rotations} rotations while writing")

    def phase(self, name: str, run: Callable[[float], object]) -> None:
        """Run one phase with its deadline and print how long it took."""
        t0 = time.monotonic()
        run(self.deadline(name))
        sent = sum(v for k, v in self.ledger.hostile.items() if k.split("/")[1].startswith(
            name.replace("traps", "snmp_trap") + ":"))
        print(f"  phase {name}: {sent:,} hostile inputs in {time.monotonic() - t0:.1f} s",
              flush=True)

    def observe(self) -> dict[str, Outcome]:
        """Alive, RSS, CPU, metrics and kernel counters of every collector, before SIGTERM."""
        outcomes = {n: Outcome(c, PATHS[n]) for n, c in self.procs.items()}
        acked = inform_acks(self.csock)
        sent = self.ledger.sent["traps_inform"]
        outcomes["traps"].extra.update(informs_sent=len(sent),
                                       informs_acked=len(acked & set(sent)))
        for n, c in self.procs.items():
            o = outcomes[n]
            o.alive_at_end = c.alive()
            o.died_code = None if o.alive_at_end or c.proc is None else c.proc.returncode
            o.rss_after_kib, o.hwm_kib = c.rss_kib(), c.hwm_kib()
            o.cpu_s = c.cpu_s() - c.cpu_before_s
            o.metrics = c.scrape()
        for n, port in (("traps", self.trap_port), ("syslog", self.udp_port)):
            outcomes[n].extra["kernel drops on its UDP socket"] = (
                udp_socket(port)[1] - self.drops0[n])
        outcomes["traps"].extra["system-wide Udp RcvbufErrors rise (all processes)"] = (
            rcvbuf_errors() - self.rcvbuf0)
        return outcomes

    def run(self) -> dict[str, Outcome]:
        """Start, attack, observe, stop, read back."""
        env = {**os.environ, "DCOPS_STATE_DIR": str(self.work / "state"),
               "PYTHONUNBUFFERED": "1"}
        self.drops0 = {"traps": udp_socket(self.trap_port)[1],
                       "syslog": udp_socket(self.udp_port)[1]}
        self.rcvbuf0 = rcvbuf_errors()
        for c in self.procs.values():
            c.start(env)
            print(f"  {c.name}: pid {c.pid}: dcops collect {' '.join(c.args)}", flush=True)
        if not ready(self.procs, self.work):
            raise SystemExit(2)
        self.warm_up()
        for c in self.procs.values():
            c.rss_before_kib, c.cpu_before_s = c.rss_kib(), c.cpu_s()
        self.phases()
        waited = settle([(self.tallies[n], PATHS[n]) for n in self.procs], self.ledger, 20, 300)
        print(f"  waited {waited:.1f} s for the last canaries", flush=True)
        outcomes = self.observe()
        stop_all(list(outcomes.values()))  # idle and slowloris connections are still open
        for o in outcomes.values():
            print(f"  {o.collector.name}: SIGTERM -> exit {o.exit_code} in {o.shutdown_s:.2f} s",
                  flush=True)
        self.close()
        for n, o in outcomes.items():
            o.spool = read_spool(self.work / f"{n}.db")
        outcomes["traps"].jsonl = read_jsonl(self.work / "traps.jsonl")
        return outcomes

    def close(self) -> None:
        """Release every socket and read-only connection of this side."""
        for drv in self.streams:
            drv.release()
        self.csock.close()
        self.usock.close()
        for t in self.tallies.values():
            t.close()

    def kill_all(self) -> None:
        """After an error in this script: stop the collectors it started."""
        for c in self.procs.values():
            if c.proc is not None and c.alive():
                c.terminate(10)


def _stream_phase(drv: StreamDriver, count: int, every: int, idle: int, ratio: float,
                  deadline: float) -> None:
    drv.run(count, every, idle, max(2, idle // 10), deadline, ratio)


def stop_all(outcomes: list[Outcome]) -> None:
    """SIGTERM each collector in turn (so one's shutdown does not slow another's), timed."""
    for o in outcomes:
        o.shutdown_s, o.exit_code, o.killed = o.collector.terminate()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=1_000_000, help="hostile inputs in all")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--syslog-workers", type=int, default=1,
                    help="dcops collect syslog --workers (TCP worker processes)")
    ap.add_argument("--canary-every", type=int, default=50)
    ap.add_argument("--idle", type=int, default=-1, help="idle TCP connections (default scaled)")
    ap.add_argument("--rss-bound-mib", type=float, default=200.0)
    ap.add_argument("--shutdown-bound", type=float, default=5.0)
    ap.add_argument("--phase-timeout", type=float, default=600.0,
                    help="a phase is aborted (and the run fails) after this many seconds plus "
                    "20 ms per input, or when its collector drains nothing for 60 s")
    ap.add_argument("--only", default="", help="comma list of phases to attack (others: "
                    "canaries only): " + ",".join(SHARES))
    ap.add_argument("--serial", action="store_true",
                    help="attack one collector at a time (default: traps, syslog and the "
                    "file tailers at once, each on its own thread)")
    ap.add_argument("--json", type=Path, help="also write the figures and verdict here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    t_start = time.monotonic()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="dcops-fuzz-"))
    print(f"fuzz campaign: {args.total:,} hostile inputs, seed {args.seed}, work {work}",
          flush=True)
    camp = Campaign(args, work)
    try:
        outcomes = camp.run()
    except BaseException:
        camp.kill_all()
        raise
    ledger = camp.ledger
    wall = time.monotonic() - t_start
    failures = verdict(list(outcomes.values()), ledger, args.rss_bound_mib, args.shutdown_bound)
    failures += [f"phase {p} aborted: {why}" for p, why in ledger.aborted.items()]
    print(render(list(outcomes.values()), ledger, wall))
    me = resource.getrusage(resource.RUSAGE_SELF)
    sender = me.ru_utime + me.ru_stime
    print(f"  sender (this script): {sender:.0f} CPU-s, "
          f"{sender / max(1, ledger.hostile_total()) * 1e6:.0f} us per hostile input generated, "
          "mutated, sent and accounted; peak RSS "
          f"{me.ru_maxrss / 1024:.0f} MiB")
    for note in ledger.notes:
        print(f"  note: {note}")
    print("UDP: every datagram the kernel queued for dcops must be stored or counted as dropped; "
          "kernel drops are read per socket from /proc/net/udp and reported apart.")
    print("VERDICT: " + ("PASS" if not failures else "FAIL\n  - " + "\n  - ".join(failures)))
    if args.json:
        args.json.write_text(json.dumps({
            "total": ledger.hostile_total(), "wall_s": wall, "sender_cpu_s": sender,
            "failures": failures,
            "verdict": "pass" if not failures else "fail", "notes": ledger.notes,
            "collectors": {n: {
                "hostile": ledger.hostile_total(n), "canaries": canary_figures(o, ledger),
                "alive": o.alive_at_end, "exit_code": o.exit_code, "shutdown_s": o.shutdown_s,
                "rss_before_kib": o.collector.rss_before_kib, "rss_after_kib": o.rss_after_kib,
                "cpu_s": o.cpu_s, "dropped": dropped_by_reason(o.metrics),
                "extra": o.extra} for n, o in outcomes.items()},
            "hostile_kinds": dict(ledger.hostile)}, indent=1))
    if args.keep or failures:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
