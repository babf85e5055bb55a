#!/usr/bin/env python3
"""Poll race: the same fleet of recorded devices polled by dcops and by prometheus-snmp-exporter.

    .venv/bin/python scripts/bench/snmp_poll.py [--devices 200] [--version 2c|3] [--rounds 7]

Devices are real walks from snmpsim-data (recdevice.py: each recording's interfaces, addresses and
routes re-created in a network namespace, served by snmpd inside it; one snmpd and one namespace
per recording, --devices split across the recordings, one agent port per device). The default
recordings are 24-42 interface access/L3 switches and a router (see RECORDINGS).

The exporter's module is generated from the same profile (monitoring/snmp/profiles.yml, default
`system,interfaces`) so both walk the same OIDs; after the warm-up the table samples one device
yields on each side are counted and the run stops if they differ. Per round every device is
polled once by each tool at the same concurrency, the order alternating per round (fairrace);
median and min-max over the rounds, load and a CPU calibration at start and end, and a ratio
only when it is outside the noise.

Both sides are timed up to a finished Prometheus exposition: the exporter's scrape answers with
its /metrics text, so dcops' round is poll_all(), SnmpMetrics.update() (counters, labels) and an
HTTP GET of its own /metrics (MetricsServer serving the text SnmpMetrics wrote), wall clock
and CPU of this process (the exposition thread included). The exporter listens on port 0 and
its port is read back from `ss`, so it cannot collide with a port picked elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fairrace import Stat, machine_line, orders, verdict  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from recdevice import NsSnmpd, RecordedDevice, Recording, load_recording  # noqa: E402

from dcops.collectors.heap import batch_gc  # noqa: E402
from dcops.collectors.snmp.metrics import SnmpMetrics  # noqa: E402
from dcops.collectors.snmp.poller import Poller  # noqa: E402
from dcops.collectors.snmp.profiles import Profile, load_profiles  # noqa: E402
from dcops.collectors.snmp.service import MetricsServer  # noqa: E402
from dcops.lab.snmp import DEFAULT_USERS  # noqa: E402
from dcops.model.site import Device, Secret, SnmpCredentials  # noqa: E402

COMMUNITY = "bench-public"
PER_SNMPD = 100  # one snmpd binds at most 128 ports
AGENT_PORT0 = 20000  # agents listen inside their own namespaces: no host port can collide
RECORDINGS = ("network/switch/ruijie-s5750-24gt12sfp",  # 24 GE + 12 SFP access switch, 27 ifs
              "network/switch/hpe-procurve-516733-b21",  # ProCurve 6120XG blade switch, 42 ifs
              "network/router/huawei-s5720",  # S5720 L3 switch/router, 39 ifs, routes
              "network/router/vyatta-unknown")  # Vyatta router, 24 ifs, 7 addresses, routes


def _table_roots(oids: list[str]) -> list[str]:
    """Table entry OIDs (column OID minus its last arc): what a generator walks for a table."""
    return list(dict.fromkeys(o.rsplit(".", 1)[0] for o in oids))


def exporter_module(profile: Profile, version: str, roots: bool = False) -> dict[str, object]:
    """An snmp_exporter 0.21 module (generator output format) for the profile's OIDs.

    `roots`: walk whole table entries (fewer walks, more varbinds) instead of each column.
    """
    walk: list[str] = []
    metrics: list[dict[str, object]] = []
    get = [s.oid for s in profile.scalars]
    for s in profile.scalars:
        metrics.append({"name": s.name, "oid": s.oid.rsplit(".", 1)[0],
                        "type": "DisplayString" if s.type == "string" else "gauge"})
    for t in profile.tables:
        walk += t.walk_oids()
        for c in t.columns:
            m: dict[str, object] = {
                "name": c.metric, "oid": c.oid, "help": c.help,
                "type": "counter" if c.type.startswith("counter") else "gauge",
                "indexes": [{"labelname": t.index_label, "type": "gauge"}]}
            if t.labels:
                m["lookups"] = [{"labels": [t.index_label], "labelname": k, "oid": oid,
                                 "type": "DisplayString"} for k, oid in t.labels.items()]
            metrics.append(m)
    u = DEFAULT_USERS[0]
    auth: dict[str, object] = {"community": COMMUNITY} if version == "2c" else {
        "security_level": "authPriv", "username": u.name, "password": u.auth_password,
        "auth_protocol": "SHA", "priv_protocol": "AES", "priv_password": u.priv_password}
    walk = _table_roots(walk) if roots else list(dict.fromkeys(walk))
    return {"walk": walk, "get": get, "metrics": metrics,
            "version": 2 if version == "2c" else 3, "max_repetitions": 25, "retries": 1,
            "timeout": "2s", "auth": auth}


def devices(targets: list[tuple[str, int]], version: str) -> list[Device]:
    u = DEFAULT_USERS[0]
    out = []
    for i, (addr, p) in enumerate(targets):
        cred = (SnmpCredentials("2c", p, community=Secret(COMMUNITY)) if version == "2c" else
                SnmpCredentials("3", p, u.name, "SHA", Secret(u.auth_password), "AES",
                                Secret(u.priv_password)))
        out.append(Device(f"bench{i:03d}", addr, "bench", "server", "net_snmp", cred))
    return out


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get_metrics(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return bytes(r.read())


async def run_dcops(poller: Poller, metrics: SnmpMetrics, server: MetricsServer
                    ) -> tuple[float, float, int, int, int]:
    """One round: poll, rebuild metrics, GET /metrics -> (wall, CPU, timeouts, failed, bytes)."""
    t0, c0 = time.perf_counter(), time.process_time()
    samples = await poller.poll_all()
    t1, c1 = time.perf_counter(), time.process_time()
    metrics.update(samples, t1 - t0)
    t2, c2 = time.perf_counter(), time.process_time()
    body = _get_metrics(server.port)  # the event loop has nothing else to do meanwhile
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  dcops phases (wall/CPU ms): poll {(t1 - t0) * 1000:.0f}/{(c1 - c0) * 1000:.0f}, "
          f"metrics update {(t2 - t1) * 1000:.0f}/{(c2 - c1) * 1000:.0f}, /metrics "
          f"{(t0 + wall - t2) * 1000:.0f}/{(c0 + cpu - c2) * 1000:.0f}")
    timeouts = sum(1 for s in samples if s.error_kind == "timeout")
    failed = sum(1 for s in samples if not s.ok)
    if body.count(b"\ndcops_snmp_up{") != len(samples):
        sys.exit(f"/metrics has not one dcops_snmp_up per device ({len(samples)})")
    server.last_body = body  # type: ignore[attr-defined]
    return wall, cpu, timeouts, failed, len(body)


async def _fetch(port: int, target: tuple[str, int]) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET /snmp?module=dcops&target={target[0]}:{target[1]} HTTP/1.0\r\n\r\n"
            .encode())
    data = await r.read()
    w.close()
    return data


async def _scrape(port: int, target: tuple[str, int], sem: asyncio.Semaphore) -> bool:
    async with sem:
        data = await _fetch(port, target)
        return data.startswith(b"HTTP/1.0 200") and b"snmp_scrape_pdus_returned" in data


def table_samples(body: bytes, metrics: set[str], device: str | None = None) -> int:
    """Sample lines of the given metric names (dcops: prefixed, `_total`; one device's)."""
    n = 0
    for line in body.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        name = name.removeprefix("dcops_").removeprefix("snmp_").removesuffix("_total")
        if name in metrics and (device is None or f'device="{device}"' in line):
            n += 1
    return n


def listening_port(pid: int, timeout: float = 10.0) -> int:
    """The TCP port process `pid` listens on (it was started on port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            if f"pid={pid}," in line:
                return int(line.split()[3].rsplit(":", 1)[1])
        time.sleep(0.1)
    raise SystemExit(f"process {pid} is not listening after {timeout}s")


async def run_exporter(port: int, pid: int, targets: list[tuple[str, int]], conc: int
                       ) -> tuple[float, float, int]:
    sem = asyncio.Semaphore(conc)
    t0, c0 = time.perf_counter(), cpu_of(pid)
    ok = await asyncio.gather(*(_scrape(port, t, sem) for t in targets))
    return time.perf_counter() - t0, cpu_of(pid) - c0, sum(1 for x in ok if not x)


def _report(args: argparse.Namespace, profile: Profile, n: int,
            rows: list[tuple[tuple[float, float, int, int, int], tuple[float, float, int]]],
            ) -> None:
    d_rate = Stat("dcops", tuple(n / d[0] for d, _ in rows), "devices/s")
    e_rate = Stat("exporter", tuple(n / e[0] for _, e in rows), "devices/s")
    d_cpu = Stat("dcops", tuple(d[1] / n * 1000 for d, _ in rows), "ms CPU/device")
    e_cpu = Stat("exporter", tuple(e[1] / n * 1000 for _, e in rows), "ms CPU/device")
    print(f"\nSNMP v{args.version}, {n} recorded devices, {len(profile.scalars)} scalars + "
          f"{sum(len(t.walk_oids()) for t in profile.tables)} columns, concurrency "
          f"{args.concurrency}, exporter walks {args.exporter_walk}, {args.rounds} rounds "
          f"(order alternating); dcops timeouts {sum(d[2] for d, _ in rows)}, "
          f"exporter failed scrapes {sum(e[2] for _, e in rows)}")
    print("throughput (higher is better):")
    print("  " + d_rate.line())
    print("  " + e_rate.line())
    print("  " + verdict(d_rate, e_rate))
    print("CPU per device (lower is better; exporter CPU = its process, dcops = this process):")
    print("  " + d_cpu.line())
    print("  " + e_cpu.line())
    print("  " + verdict(e_cpu, d_cpu) + "  (exporter/dcops: > 1 means dcops uses less)")


def _start_fleet(recs: list[Recording], share: list[int], work: Path,
                 nsdevs: list[RecordedDevice], agents: list[NsSnmpd],
                 targets: list[tuple[str, int]]) -> None:
    """One namespace + snmpd per recording (per 100 devices); fills the lists for cleanup."""
    slot = 0
    for rec, k in zip(recs, share, strict=True):
        for j in range(0, k, PER_SNMPD):
            slot += 1
            dev = RecordedDevice(rec, slot)
            nsdevs.append(dev)
            dev.create()
            ports = [AGENT_PORT0 + x for x in range(min(PER_SNMPD, k - j))]
            agents.append(NsSnmpd(dev, work / f"snmpd{slot}", ports, COMMUNITY))
            agents[-1].start()
            targets += [(dev.address, p) for p in ports]
        print(f"  {rec.name}: {k} devices, {len(rec.interfaces)} interfaces, "
              f"{len(rec.addresses)} addresses, {len(rec.routes)} routes", flush=True)


def _same_oids(profile: Profile, recs: list[Recording], share: list[int],
               server: MetricsServer, loop: asyncio.AbstractEventLoop, eport: int,
               targets: list[tuple[str, int]]) -> None:
    """After the warm-up: one device per recording yields the same table samples on both."""
    cols = {c.metric for t in profile.tables for c in t.columns}
    for i, rec in enumerate(recs):
        first = sum(share[:i])
        ds = table_samples(server.last_body, cols, f"bench{first:03d}")  # type: ignore[attr-defined]
        es = table_samples(loop.run_until_complete(_fetch(eport, targets[first])), cols)
        print(f"  same OIDs check, {rec.name}: table samples per device dcops {ds}, "
              f"exporter {es}", flush=True)
        if ds != es or ds == 0:
            sys.exit("the two pollers do not walk the same tables: no race")


def _rounds(args: argparse.Namespace, loop: asyncio.AbstractEventLoop, poller: Poller,
            metrics: SnmpMetrics, server: MetricsServer, eport: int, epid: int,
            targets: list[tuple[str, int]]) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    rows = []
    n = len(targets)
    for r, order in enumerate(orders(["dcops", "exporter"], args.rounds)):
        res: dict[str, tuple[float, ...]] = {}
        for who in order:
            res[who] = (loop.run_until_complete(run_dcops(poller, metrics, server))
                        if who == "dcops" else loop.run_until_complete(
                            run_exporter(eport, epid, targets, args.concurrency)))
        d, e = res["dcops"], res["exporter"]
        rows.append((d, e))
        print(f"round {r + 1} ({' then '.join(order)}): dcops {n / d[0]:7.1f} dev/s "
              f"{d[1] / n * 1000:5.2f} ms CPU/dev timeouts {d[2]} failed {d[3]} "
              f"/metrics {int(d[4]) // 1024} KiB | exporter {n / e[0]:7.1f} dev/s "
              f"{e[1] / n * 1000:5.2f} ms CPU/dev failed {e[2]}", flush=True)
    return rows


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--version", choices=["2c", "3"], default="2c")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--profiles", default="system,interfaces",
                    help="profiles of monitoring/snmp/profiles.yml polled, comma separated")
    ap.add_argument("--recordings", default=",".join(RECORDINGS),
                    help="snmpsim-data recordings (path under snmpsim_data/data, no suffix)")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="snmpsim_data/data (default: the installed snmpsim_data package; "
                         "`uv run --no-project --with snmpsim-data` puts one in a cache)")
    ap.add_argument("--exporter-walk", choices=["columns", "tables"], default="columns",
                    help="snmp_exporter walks each column (default) or whole table entries")
    return ap.parse_args()


def main() -> None:
    args = _args()
    if args.rounds < 1 or args.devices < 1:
        sys.exit("--rounds and --devices must be >= 1")
    data = args.data_dir or _snmpsim_data()
    loaded = load_profiles(ROOT / "monitoring" / "snmp" / "profiles.yml")
    parts = [loaded[n] for n in args.profiles.split(",")]
    profile = Profile("bench", tuple(s for p in parts for s in p.scalars),
                      tuple(t for p in parts for t in p.tables))
    recs = []
    for r in args.recordings.split(","):
        path = data / f"{r}.snmprec.bz2"
        if not path.exists():
            sys.exit(f"--recordings: {path} not found (expected a path under {data}, no suffix)")
        recs.append(load_recording(path))
    print(machine_line("start"), flush=True)
    work = Path(tempfile.mkdtemp(prefix="dcops-bench-"))
    nsdevs: list[RecordedDevice] = []
    agents: list[NsSnmpd] = []
    targets: list[tuple[str, int]] = []
    exporter = None
    try:
        share = [args.devices // len(recs) + (1 if i < args.devices % len(recs) else 0)
                 for i in range(len(recs))]
        _start_fleet(recs, share, work, nsdevs, agents, targets)
        (work / "snmp.yml").write_text(yaml.safe_dump({"dcops": exporter_module(
            profile, args.version, args.exporter_walk == "tables")}))
        exporter = subprocess.Popen(
            ["prometheus-snmp-exporter", f"--config.file={work / 'snmp.yml'}",
             "--web.listen-address=127.0.0.1:0", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=(work / "exporter.log").open("wb"))
        eport = listening_port(exporter.pid)
        if exporter.poll() is not None:
            sys.exit(f"snmp_exporter failed: {(work / 'exporter.log').read_text()}")
        poller = Poller(devices(targets, args.version), {"net_snmp": profile},  # as profile
                        allow_v2c=True, timeout=2.0, retries=1,
                        concurrency=args.concurrency)
        metrics = SnmpMetrics({"net_snmp": profile})
        registry = CollectorRegistry(auto_describe=False)  # as `dcops collect snmp` serves it
        server = MetricsServer(registry, "127.0.0.1", 0, texts=[metrics.text])
        batch_gc()  # as `dcops collect snmp` does once it has built its poller
        loop = asyncio.new_event_loop()
        # warm-up (v3 discovery, agent caches) for both, then the same-OIDs check
        loop.run_until_complete(run_dcops(poller, metrics, server))
        loop.run_until_complete(run_exporter(eport, exporter.pid, targets, args.concurrency))
        _same_oids(profile, recs, share, server, loop, eport, targets)
        rows = _rounds(args, loop, poller, metrics, server, eport, exporter.pid, targets)
        poller.close()
        server.close()
        loop.close()
        print(machine_line("end"))
        _report(args, profile, len(targets), rows)  # type: ignore[arg-type]
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(10)
        for a in agents:
            a.stop()
        for dev in nsdevs:
            dev.destroy()


def _snmpsim_data() -> Path:
    """snmpsim_data/data: the venv's package when it has the recordings, else uv's cached one."""
    try:
        import snmpsim_data  # type: ignore[import-not-found]

        local = Path(snmpsim_data.__path__[0]) / "data"
        if local.is_dir():  # snmpsim itself ships an empty snmpsim_data package
            return local
    except ImportError:
        pass
    code = ("import sys, pathlib; print(next(str(p) for p in map(pathlib.Path, sys.path) "
            "if (p / 'snmpsim_data' / 'data').is_dir()))")
    out = subprocess.run(["uv", "run", "--no-project", "--with", "snmpsim-data", "python",
                          "-c", code], capture_output=True, text=True, check=False, cwd="/")
    if out.returncode != 0:
        sys.exit(f"snmpsim-data not found (give --data-dir): {out.stderr[-300:]}")
    return Path(out.stdout.strip()) / "snmpsim_data" / "data"


if __name__ == "__main__":
    main()
