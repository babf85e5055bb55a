#!/usr/bin/env python3
"""The console at NOC scale: webhook intake rate and page times, SQLite and PostgreSQL side by side.

For each store it starts the real console (`create_app` under uvicorn on loopback, as `dcops
serve` runs it), posts N Alertmanager alerts through the webhook in posts of 50 (a WAN outage
across communes, as Alertmanager groups them), then times every console page as an analyst
(median and spread of several rounds). PostgreSQL is a throwaway cluster (initdb, fsync off as in
the tests; say so beside the figures). The goal (issue 19): ≥ 2,000 alerts/s on the webhook and
every page under 1 s at 100,000 alerts.

Usage: .venv/bin/python scripts/bench/triage_scale.py [--alerts 100000] [--batch 50]
       [--rounds 5] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from dcops.alerts import AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.alerts.trail import TrailConfig
from dcops.triage import create_app

TOKEN = "bench-webhook-token-0123456789"
PAGES = ("/alerts", "/alerts?status=all", "/alerts?severity=critical", "/alerts?page=50",
         "/alerts?q=rtr77", "/alerts/{alert}", "/incidents", "/incidents/{incident}", "/sla",
         "/audit")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (as tests/integration/alerts/conftest.py starts it)."""
    bindir = next(Path(f"/usr/lib/postgresql/{v}/bin") for v in ("17", "16", "15")
                  if Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists())
    base = Path(tempfile.mkdtemp(prefix="dcops-pg-bench-"))
    as_pg: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(base / "data"), "-A", "trust",
                    "-U", "dcops", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-o", opts, "-l",
                    str(base / "log"), "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        import psycopg

        name = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(f"postgresql://dcops@127.0.0.1:{port}/postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        yield f"postgresql+psycopg://dcops@127.0.0.1:{port}/{name}"
    finally:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m",
                        "immediate", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def console(store: AlertStore) -> Iterator[str]:
    port = free_port()
    app = create_app(StoreBackend(store), "bench-session-secret", webhook_token=TOKEN)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def payload(start: int, n: int, t0: datetime) -> dict[str, object]:
    """n firing alerts of a WAN outage: one per commune router link, distinct fingerprints."""
    sev = ("critical", "high", "medium", "low")
    return {"version": "4", "status": "firing", "receiver": "dcops", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
            "groupKey": "{}:{}", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "fingerprint": f"{i:016x}",
                        "startsAt": (t0 + timedelta(seconds=i)).isoformat(),
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom",
                        "labels": {"alertname": "WanLinkDown", "severity": sev[i % 4],
                                   "instance": f"rtr{i}", "site": f"xa_{i % 95}",
                                   "system": "wan"},
                        "annotations": {"summary": f"WAN link down at rtr{i}"}}
                       for i in range(start, start + n)]}


def login(client: httpx.Client, base: str) -> None:
    import re

    page = client.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page[:500]
    r = client.post(f"{base}/login", data={"username": "bench", "password": "bench-password-1",
                                           "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text[:500]


def run_store(url: str, alerts: int, batch: int, rounds: int) -> dict[str, object]:
    # A trail key for PostgreSQL (SQLite keeps one beside the file); anchoring off in both.
    store = AlertStore(url, trail=TrailConfig(key_text="bench:" + secrets.token_hex(32)))
    Users(store.engine).add("bench", "bench-password-1", "admin", "bench")  # read + audit
    out: dict[str, object] = {}
    t0 = datetime.now(UTC) - timedelta(days=2)
    with console(store) as base, httpx.Client(timeout=120) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        start = time.monotonic()
        for k in range(0, alerts, batch):
            r = client.post(f"{base}/api/v1/alertmanager/webhook", headers=headers,
                            json=payload(k, min(batch, alerts - k), t0))
            assert r.status_code == 200, r.text[:500]
        took = time.monotonic() - start
        out["webhook alerts/s"] = alerts / took
        out["webhook seconds"] = took
        login(client, base)
        first = store.query(None)[0]
        for page in PAGES:
            path = page.format(alert=first.id, incident=first.incident_id or 1)
            times = []
            size = 0
            for _ in range(rounds):
                t = time.monotonic()
                r = client.get(f"{base}{path}")
                times.append(time.monotonic() - t)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                size = len(r.content)
            out[page] = (statistics.median(times), min(times), max(times), size)
    store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stores", default="sqlite,postgres")
    args = ap.parse_args()
    results: dict[str, dict[str, object]] = {}
    for name in args.stores.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory(prefix="dcops-bench-") as tmp:
                results[name] = run_store(f"sqlite:///{tmp}/alerts.db", args.alerts, args.batch,
                                          args.rounds)
        elif name == "postgres":
            with postgres() as url:
                results[name] = run_store(url, args.alerts, args.batch, args.rounds)
        else:
            print(f"unknown store {name!r}: expected sqlite or postgres", file=sys.stderr)
            return 2
        print(f"{name}: done", file=sys.stderr)
    load = os.getloadavg()
    print(f"\n{args.alerts} alerts through the webhook in posts of {args.batch}; "
          f"{args.rounds} rounds per page; load average {load[0]:.1f} "
          f"(PostgreSQL with fsync=off, SQLite with its defaults)")
    names = list(results)
    print(f"{'':28}" + "".join(f"{n:>30}" for n in names))
    for key in ("webhook alerts/s", "webhook seconds"):
        print(f"{key:28}" + "".join(f"{float(results[n][key]):>30.1f}"  # type: ignore[arg-type]
                                    for n in names))
    print("page (median s [min-max], KiB)")
    worst = 0.0
    for page in PAGES:
        cells = []
        for n in names:
            med, lo, hi, size = results[n][page]  # type: ignore[misc]
            worst = max(worst, med)
            cells.append(f"{med:.3f} [{lo:.3f}-{hi:.3f}] {size // 1024}")
        print(f"{page:28}" + "".join(f"{c:>30}" for c in cells))
    rate = min(float(results[n]["webhook alerts/s"]) for n in names)  # type: ignore[arg-type]
    print(f"\nslowest page median {worst:.3f} s (goal < 1 s); slowest webhook "
          f"{rate:.0f} alerts/s (goal >= 2,000)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
