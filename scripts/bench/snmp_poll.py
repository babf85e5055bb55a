#!/usr/bin/env python3
"""Poll benchmark: the same fleet of snmpd agents polled by dcops and by prometheus-snmp-exporter.

    .venv/bin/python scripts/bench/snmp_poll.py [--devices 200] [--version 2c|3] [--rounds 3]

Starts ceil(devices/100) snmpd processes (one snmpd binds at most 128 ports), generates an
snmp_exporter module from the same profile (monitoring/snmp/profiles.yml, `net_snmp`), then per
round polls every device once with each tool at the same concurrency and prints devices/s, CPU
per device and the ratio dcops/exporter. Numbers go to docs/noc.md by hand.

Both sides are timed up to a finished Prometheus exposition: the exporter's scrape answers with
its /metrics text, so dcops' round is poll_all(), SnmpMetrics.update() (counters, labels) and an
HTTP GET of its own /metrics (MetricsServer, the text prometheus_client generates), wall clock
and CPU of this process (the exposition thread included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from prometheus_client import CollectorRegistry  # noqa: E402

from dcops.collectors.snmp.metrics import SnmpMetrics  # noqa: E402
from dcops.collectors.snmp.poller import Poller  # noqa: E402
from dcops.collectors.snmp.profiles import Profile, load_profiles  # noqa: E402
from dcops.collectors.snmp.service import MetricsServer  # noqa: E402
from dcops.lab.snmp import DEFAULT_USERS, Snmpd, free_udp_ports  # noqa: E402
from dcops.model.site import Device, Secret, SnmpCredentials  # noqa: E402

COMMUNITY = "bench-public"
PER_SNMPD = 100


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


def devices(ports: list[int], version: str) -> list[Device]:
    u = DEFAULT_USERS[0]
    out = []
    for i, p in enumerate(ports):
        cred = (SnmpCredentials("2c", p, community=Secret(COMMUNITY)) if version == "2c" else
                SnmpCredentials("3", p, u.name, "SHA", Secret(u.auth_password), "AES",
                                Secret(u.priv_password)))
        out.append(Device(f"bench{i:03d}", "127.0.0.1", "bench", "server", "net_snmp", cred))
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
    return wall, cpu, timeouts, failed, len(body)


async def _scrape(port: int, target: int, sem: asyncio.Semaphore) -> bool:
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET /snmp?module=dcops&target=127.0.0.1:{target} HTTP/1.0\r\n\r\n".encode())
        data = await r.read()
        w.close()
        return data.startswith(b"HTTP/1.0 200") and b"snmp_scrape_pdus_returned" in data


async def run_exporter(port: int, pid: int, targets: list[int], conc: int
                       ) -> tuple[float, float, int]:
    sem = asyncio.Semaphore(conc)
    t0, c0 = time.perf_counter(), cpu_of(pid)
    ok = await asyncio.gather(*(_scrape(port, t, sem) for t in targets))
    return time.perf_counter() - t0, cpu_of(pid) - c0, sum(1 for x in ok if not x)


def _report(args: argparse.Namespace, profile: Profile,
            rows: list[tuple[tuple[float, float, int, int, int], tuple[float, float, int]]],
            ) -> None:
    d_rate = statistics.median(args.devices / d[0] for d, _ in rows)
    e_rate = statistics.median(args.devices / e[0] for _, e in rows)
    d_cpu = statistics.median(d[1] / args.devices * 1000 for d, _ in rows)
    e_cpu = statistics.median(e[1] / args.devices * 1000 for _, e in rows)
    print(f"\nSNMP v{args.version}, {args.devices} devices, {len(profile.scalars)} scalars + "
          f"{sum(len(t.walk_oids()) for t in profile.tables)} columns, concurrency "
          f"{args.concurrency}, exporter walks {args.exporter_walk}, "
          f"median of {args.rounds} rounds")
    print(f"dcops:    {d_rate:8.1f} devices/s  {d_cpu:6.2f} ms CPU/device  "
          f"timeouts {sum(d[2] for d, _ in rows)}  (poll + metrics update + /metrics)")
    print(f"exporter: {e_rate:8.1f} devices/s  {e_cpu:6.2f} ms CPU/device  "
          f"failed {sum(e[2] for _, e in rows)}")
    print(f"ratio dcops/exporter: {d_rate / e_rate:.2f}x devices/s, "
          f"{e_cpu / d_cpu:.2f}x CPU efficiency")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--version", choices=["2c", "3"], default="2c")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--profiles", default="system,interfaces",
                    help="profiles of monitoring/snmp/profiles.yml polled, comma separated "
                         "(host_resources makes snmpd itself the bottleneck)")
    ap.add_argument("--exporter-walk", choices=["columns", "tables"], default="columns",
                    help="snmp_exporter walks each column (default) or whole table entries")
    args = ap.parse_args()
    loaded = load_profiles(ROOT / "monitoring" / "snmp" / "profiles.yml")
    parts = [loaded[n] for n in args.profiles.split(",")]
    profile = Profile("bench", tuple(s for p in parts for s in p.scalars),
                      tuple(t for p in parts for t in p.tables))
    work = Path(tempfile.mkdtemp(prefix="dcops-bench-"))
    ports = free_udp_ports(args.devices)
    agents = [Snmpd(work / f"snmpd{i}", ports[i:i + PER_SNMPD], community=COMMUNITY)
              for i in range(0, len(ports), PER_SNMPD)]
    exporter = None
    try:
        for a in agents:
            a.start()
        (work / "snmp.yml").write_text(yaml.safe_dump({"dcops": exporter_module(
            profile, args.version, args.exporter_walk == "tables")}))
        eport = free_udp_ports(1)[0]  # any free number; TCP collision is unlikely
        exporter = subprocess.Popen(
            ["prometheus-snmp-exporter", f"--config.file={work / 'snmp.yml'}",
             f"--web.listen-address=127.0.0.1:{eport}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=(work / "exporter.log").open("wb"))
        time.sleep(1.0)
        if exporter.poll() is not None:
            sys.exit(f"snmp_exporter failed: {(work / 'exporter.log').read_text()}")
        poller = Poller(devices(ports, args.version), {"net_snmp": profile},  # as profile
                        allow_v2c=True, timeout=2.0, retries=1,
                        concurrency=args.concurrency)
        metrics = SnmpMetrics({"net_snmp": profile})
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        server = MetricsServer(registry, "127.0.0.1", 0)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(run_dcops(poller, metrics, server))  # warm-up: v3 discovery
        loop.run_until_complete(run_exporter(eport, exporter.pid, ports, args.concurrency))
        rows = []
        for r in range(args.rounds):
            d = loop.run_until_complete(run_dcops(poller, metrics, server))
            e = loop.run_until_complete(run_exporter(eport, exporter.pid, ports,
                                                     args.concurrency))
            rows.append((d, e))
            print(f"round {r + 1}: dcops {args.devices / d[0]:7.1f} dev/s "
                  f"{d[1] / args.devices * 1000:5.2f} ms CPU/dev timeouts {d[2]} failed {d[3]} "
                  f"/metrics {d[4] // 1024} KiB | "
                  f"exporter {args.devices / e[0]:7.1f} dev/s "
                  f"{e[1] / args.devices * 1000:5.2f} ms CPU/dev failed {e[2]}")
        poller.close()
        server.close()
        loop.close()
        _report(args, profile, rows)
    finally:
        if exporter is not None:
            exporter.terminate()
            exporter.wait(10)
        for a in agents:
            a.stop()


if __name__ == "__main__":
    main()
