#!/usr/bin/env python3
"""The console at NOC scale: webhook intake rate and page times, SQLite and PostgreSQL side by side.

For each store it starts the real console (`create_app` under uvicorn on loopback in a child
process, as `dcops serve` runs it). The webhook rate: several rounds of 10,000 Alertmanager
alerts in posts of 50 (a WAN outage across communes, as Alertmanager groups them), each into a
fresh store, the stores alternating which goes first; median and spread. The pages: N alerts
(100,000) seeded through the same webhook, then every console page viewed several times as an
admin (median and spread), and the /audit page's full-walk link once. PostgreSQL is a throwaway
cluster (initdb, fsync off as in the tests; the output says so). The goals (issue 19) are
printed with pass/fail: >= 2,000 alerts/s on the webhook and every page under 1 s at 100,000
alerts.

Usage: .venv/bin/python scripts/bench/triage_scale.py [--alerts 100000] [--webhook-alerts 10000]
       [--webhook-rounds 3] [--batch 50] [--rounds 5] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

from dcops.alerts import AlertFilter, AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.alerts.trail import TrailConfig
from dcops.triage import create_app

TOKEN = "bench-webhook-token-0123456789"
PAGES = ("/alerts", "/alerts?status=all", "/alerts?severity=critical", "/alerts?page=50",
         "/alerts?status=all&page={last}", "/alerts?q=rtr77", "/alerts/{alert}", "/incidents",
         "/incidents?page={last_inc}", "/incidents/{incident}", "/sla", "/audit", "/users")
GOAL_RATE = 2000.0
GOAL_PAGE = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (as tests/integration/alerts/conftest.py starts it); yields
    its URL without a database (`new_database` makes them)."""
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
        yield f"postgresql+psycopg://dcops@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m",
                        "immediate", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def new_database(server: str, label: str) -> str:
    """A new empty database on the bench cluster."""
    import psycopg

    name = f"{label}_{uuid.uuid4().hex[:8]}"
    plain = server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


def _serve(url: str, key_text: str, port: int) -> None:
    """The console in its own process, as `dcops serve` runs (the bench client is Alertmanager
    and the analyst: a thread of the same process would share the interpreter lock with it)."""
    store = AlertStore(url, trail=TrailConfig(key_text=key_text))
    backend = StoreBackend(store)
    backend.verifier.warm()  # as dcops serve does: the first full trail walk at start
    app = create_app(backend, "bench-session-secret", webhook_token=TOKEN)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


@contextmanager
def console(store: AlertStore) -> Iterator[str]:
    """The console over `store`'s database and trail key, in a child process."""
    port = free_port()
    store.engine.dispose()  # no pooled connection crosses the fork
    key_text = store.trail.config.key_text
    proc = multiprocessing.get_context("fork").Process(
        target=_serve, args=(store.url, key_text, port), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/login", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or not proc.is_alive():
                raise
            time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        proc.join(timeout=20)


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


def open_store(url: str) -> AlertStore:
    # A trail key for PostgreSQL (SQLite keeps one beside the file); anchoring off in both.
    return AlertStore(url, trail=TrailConfig(key_text="bench:" + secrets.token_hex(32)))


def post_all(client: httpx.Client, base: str, alerts: int, batch: int, first: int = 0) -> float:
    """Post `alerts` webhook alerts in bodies of `batch`; the seconds it took."""
    t0 = datetime.now(UTC) - timedelta(days=2)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    start = time.monotonic()
    for k in range(first, first + alerts, batch):
        r = client.post(f"{base}/api/v1/alertmanager/webhook", headers=headers,
                        json=payload(k, min(batch, first + alerts - k), t0))
        assert r.status_code == 200, r.text[:500]
    return time.monotonic() - start


def webhook_round(url: str, alerts: int, batch: int) -> float:
    """alerts/s of one round into a fresh store."""
    store = open_store(url)
    try:
        with console(store) as base, httpx.Client(timeout=120) as client:
            return alerts / post_all(client, base, alerts, batch)
    finally:
        store.close()


def pages_at_scale(url: str, alerts: int, batch: int, rounds: int) -> dict[str, object]:
    """Seed `alerts` through the webhook, then time every page (`rounds` views each)."""
    store = open_store(url)
    Users(store.engine).add("bench", "bench-password-1", "admin", "bench")  # read + audit
    out: dict[str, object] = {}
    try:
        with console(store) as base, httpx.Client(timeout=300) as client:
            took = post_all(client, base, alerts, batch)
            out["seed alerts/s"] = alerts / took
            login(client, base)
            first = store.query(AlertFilter(limit=1))[0]
            last = max(1, -(-alerts // 100))
            last_inc = max(1, -(-store.incident_count() // 100))
            for page in PAGES:
                path = page.format(alert=first.id, incident=first.incident_id or 1, last=last,
                                   last_inc=last_inc)
                times = []
                size = 0
                for _ in range(rounds):
                    t = time.monotonic()
                    r = client.get(f"{base}{path}")
                    times.append(time.monotonic() - t)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                    size = len(r.content)
                out[page] = (statistics.median(times), min(times), max(times), size)
            # What the page's link does: the whole trail walked (also in the background hourly).
            t = time.monotonic()
            assert client.get(f"{base}/audit?verify=full").status_code == 200
            out["/audit?verify=full (once)"] = (time.monotonic() - t,) * 3 + (0,)
    finally:
        store.close()
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=100_000, help="alerts seeded before the pages")
    ap.add_argument("--webhook-alerts", type=int, default=10_000,
                    help="alerts per webhook round (the issue's 200 posts of 50)")
    ap.add_argument("--webhook-rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5, help="views of each page")
    ap.add_argument("--stores", default="sqlite,postgres")
    args = ap.parse_args()
    names = args.stores.split(",")
    if unknown := [n for n in names if n not in ("sqlite", "postgres")]:
        print(f"unknown store {unknown[0]!r}: expected sqlite or postgres", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dcops-bench-")))
        pg = stack.enter_context(postgres()) if "postgres" in names else ""
        n = 0

        def fresh(name: str) -> str:
            nonlocal n
            n += 1
            if name == "sqlite":
                return f"sqlite:///{tmp}/alerts{n}.db"
            return new_database(pg, f"bench{n}")

        rates: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.webhook_rounds):  # alternating order: neither store always first
            for name in (names if r % 2 == 0 else names[::-1]):
                rates[name].append(webhook_round(fresh(name), args.webhook_alerts, args.batch))
                print(f"webhook round {r + 1} {name}: {rates[name][-1]:.0f} alerts/s",
                      file=sys.stderr)
        results = {}
        for name in names:
            results[name] = pages_at_scale(fresh(name), args.alerts, args.batch, args.rounds)
            print(f"{name}: pages done", file=sys.stderr)
    load = os.getloadavg()
    print(f"\nwebhook: {args.webhook_rounds} rounds of {args.webhook_alerts} alerts in posts of "
          f"{args.batch} into a fresh store, stores alternating; pages at {args.alerts} alerts "
          f"(seeded through the webhook), {args.rounds} views each; load average {load[0]:.1f} "
          f"on {os.cpu_count()} cores (PostgreSQL with fsync=off, SQLite with its defaults)")
    width = 30
    print(f"{'':34}" + "".join(f"{n:>{width}}" for n in names) + "  goal")
    ok_rate = all(statistics.median(rates[n]) >= GOAL_RATE for n in names)
    print(f"{'webhook alerts/s median [min-max]':34}"
          + "".join(f"{spread(rates[n]):>{width}}" for n in names)
          + f"  >= {GOAL_RATE:.0f}: {'pass' if ok_rate else 'FAIL'}")
    print(f"{'seeding alerts/s (to N alerts)':34}"
          + "".join(f"{float(results[n]['seed alerts/s']):>{width}.0f}"  # type: ignore[arg-type]
                    for n in names))
    print("page: median s [min-max] KiB")
    worst = 0.0
    for page in (*PAGES, "/audit?verify=full (once)"):
        cells = []
        meds = []
        for n in names:
            timing: tuple[float, float, float, int] = results[n][page]  # type: ignore[assignment]
            med, lo, hi, size = timing
            meds.append(med)
            cells.append(f"{med:.3f} [{lo:.3f}-{hi:.3f}] {size // 1024}")
        goal = ""
        if "(once)" not in page:
            worst = max(worst, *meds)
            goal = f"  < {GOAL_PAGE:.0f} s: {'pass' if max(meds) < GOAL_PAGE else 'FAIL'}"
        print(f"{page:34}" + "".join(f"{c:>{width}}" for c in cells) + goal)
    print(f"\nslowest page median {worst:.3f} s (goal < 1 s): "
          f"{'pass' if worst < GOAL_PAGE else 'FAIL'}; webhook median "
          f"{min(statistics.median(rates[n]) for n in names):.0f} alerts/s at the slowest store "
          f"(goal >= 2,000): {'pass' if ok_rate else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
