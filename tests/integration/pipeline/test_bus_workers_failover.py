"""Detection workers on the 3-node cluster: SIGKILL a NATS node and a worker mid-stream.

EVENTS numbered events (dcops.lab.workload: SSH failures and successes that fire the brute-force,
success-after-failures and root-login rules thousands of times, plus noise) are published to an
R3 stream partitioned by host (`partitions=2`: each event on
`<prefix>.events.<site>.<source>.p<k>`) while two real `dcops detect run --worker-group g
--partitions 2` processes share them into one alert store, each partition reading only its own
subject. Publishing starts once each worker holds a partition (so the worker killed
holds one). Mid-stream one NATS node and one worker are SIGKILLed; the node restarts
from its store_dir, the surviving worker takes the dead one's partition when its lease expires,
and a new worker joins later and is given a partition back. At the end: the stream holds every
event once, the store holds every detection id once, and the detections (correlations
included) are exactly those of one process over the same events. The counts are printed.
DCOPS_FAILOVER_EVENTS changes the count (100,000 fit in about two minutes on 2 cores).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from natscluster import NatsCluster

from dcops.detect.engine import Engine
from dcops.lab.workload import event
from dcops.model.event import Event
from dcops.pipeline.jetstream import BusUnavailableError, JetStreamBus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
EVENTS = int(os.environ.get("DCOPS_FAILOVER_EVENTS", "100000"))
BATCH = 1000
TTL = 6  # seconds before a killed worker's partitions move
PARTITIONS = 2  # one per worker running at a time


def _worker(cluster: NatsCluster, url: str, db: Path, name: str, log: Path,
            env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", cluster.controller, sys.executable, "-m", "dcops", "detect",
             "run", "--bus", url, "--db", f"sqlite:///{db}", "--worker-group", "g",
             "--partitions", "2", "--lease-ttl", str(TTL), "--worker-id", name],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def _read(logs: dict[str, Path]) -> str:
    """What each worker's stop line says it read."""
    out = []
    for n, path in logs.items():
        m = re.findall(r"worker \S+: (\d+) events read", path.read_text())
        out.append(f"{n} {m[-1] if m else '?'}")
    return ", ".join(out)


def _leader(cluster: NatsCluster, stream: str) -> int:
    """Index of the node that leads the events stream (else the second node)."""
    for i, n in enumerate(cluster.nodes):
        for acct in cluster.jsz(n).get("account_details", []):  # type: ignore[union-attr]
            for s in acct.get("stream_detail", []):
                if s["name"] == stream and s.get("cluster", {}).get("leader") == n.name:
                    return i
    return 1


def _owners(bus: JetStreamBus) -> dict[int, str]:
    """Partition -> the worker holding its lease now."""
    out = {}
    for p in range(PARTITIONS):
        doc = json.loads(bus.load_checkpoint(f"lease/g/p{p}") or "{}")
        if doc.get("owner") and doc.get("until", 0) > time.time():
            out[p] = doc["owner"]
    return out


def _wait_each_holds_one(bus: JetStreamBus, workers: dict[str, subprocess.Popen[bytes]],
                         logs: dict[str, Path]) -> None:
    deadline = time.monotonic() + 120
    while sorted(_owners(bus).values()) != sorted(workers):
        for n, proc in workers.items():
            assert proc.poll() is None, logs[n].read_text()[-3000:]
        assert time.monotonic() < deadline, (_owners(bus), {n: logs[n].read_text()[-1500:]
                                                            for n in workers})
        time.sleep(0.2)


def test_kill_a_node_and_a_worker_mid_stream(nats_cluster: NatsCluster, bus_prefix: str,
                                             tmp_path: Path) -> None:
    url = (f"{nats_cluster.url}?replicas=3&prefix={bus_prefix}&publish_timeout=90s"
           f"&partitions={PARTITIONS}")
    db = tmp_path / "alerts.db"
    env = dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    logs = {n: tmp_path / f"{n}.log" for n in ("wA", "wB", "wC")}
    pub = nats_cluster.run(lambda: JetStreamBus(url))
    stream = pub.config.events_stream
    errors: list[BaseException] = []
    done = threading.Event()
    progress = [0]

    def publisher() -> None:
        try:
            for k in range(0, EVENTS, BATCH):
                pub.publish([event(i) for i in range(k, min(k + BATCH, EVENTS))])
                progress[0] = min(k + BATCH, EVENTS)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        done.set()

    workers = {n: _worker(nats_cluster, url, db, n, logs[n], env) for n in ("wA", "wB")}
    # Publish once each worker holds a partition, so the worker killed holds one every run (a
    # worker slower to start than the other was killed before it took any).
    _wait_each_holds_one(pub, workers, logs)
    t0 = time.monotonic()
    threading.Thread(target=publisher, daemon=True).start()
    try:
        while progress[0] < EVENTS * 0.4 and not done.is_set():
            time.sleep(0.2)
        victim = nats_cluster.nodes[_leader(nats_cluster, stream)]
        held = sorted(p for p, w in _owners(pub).items() if w == "wA")
        assert held, _owners(pub)  # the worker killed holds a partition
        nats_cluster.kill(victim)
        workers["wA"].send_signal(signal.SIGKILL)
        workers["wA"].wait(10)
        killed_at = progress[0]
        time.sleep(2)
        nats_cluster.restart(victim)
        time.sleep(TTL + 4)  # wB takes wA's partition once its lease expired
        workers["wC"] = _worker(nats_cluster, url, db, "wC", logs["wC"], env)
        done.wait(600)
        assert not errors, errors
        published = time.monotonic() - t0
        last = pub.count()
        deadline = time.monotonic() + 600
        cursors: list[int] = []
        while time.monotonic() < deadline:
            try:
                cursors = [pub.cursor(f"g/p{p}") for p in range(2)]
            except BusUnavailableError:
                cursors = []
            if cursors and min(cursors) >= last:
                break
            for n in ("wB", "wC"):
                assert workers[n].poll() is None, logs[n].read_text()[-3000:]
            time.sleep(1)
        detected = time.monotonic() - t0
        stored: list[Event] = []  # the stream as every reader sees it, in stream order
        at = 0
        while batch := pub.fetch_after(at, 10_000):
            stored += [e for _, e in batch]
            at = batch[-1][0]
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in workers.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        pub.close()
    tail = {n: logs[n].read_text()[-1500:] for n in logs}
    assert cursors and min(cursors) >= last, (cursors, last, tail)

    # One process over the same stream. Not over range(EVENTS): a batch published across the
    # leader's death is stored partly after the retry of what was in flight then, so the
    # stream's order is not the publisher's (each event still once), and correlation windows
    # follow the stream's order.
    order = [int(e.fields["n"]) for e in stored]
    assert sorted(order) == list(range(EVENTS))
    moved = sum(1 for a, b in itertools.pairwise(order) if b < a)
    reference = copy.deepcopy(Engine.from_dirs([REPO / "soc_rules"])).process(stored)
    ref_ids = {d.id for d in reference}
    corr_rules = {d.rule_id for d in reference if len(d.event_ids) > 1}
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT detection_id FROM alert_detections").fetchall()
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        by_rule = Counter(r for (r,) in conn.execute(
            "SELECT a.rule_id FROM alert_detections d JOIN alerts a ON a.id = d.alert_id"))
    got = Counter(r for (r,) in rows)
    twice = sum(1 for c in got.values() if c > 1)
    missing, extra = ref_ids - set(got), set(got) - ref_ids
    ref_corr = sum(1 for d in reference if d.rule_id in corr_rules)
    got_corr = sum(n for r, n in by_rule.items() if r in corr_rules)
    print(f"\nworkers failover: {EVENTS} events, stream holds {last} (lost {EVENTS - last}); "
          f"killed node {victim.name} and worker wA (partition {held}) after {killed_at} "
          "published; "
          f"published in {published:.0f}s, detected by {detected:.0f}s; "
          f"detections {len(got)} (one process: {len(ref_ids)}), correlation detections "
          f"{got_corr} (one process: {ref_corr}), missing {len(missing)}, extra {len(extra)}, "
          f"twice in the store {twice}; alerts {alerts}; events read by the workers "
          f"{_read(logs)} (each partition its own subject); stored out of publish order "
          f"{moved} time(s)")
    assert last == EVENTS
    assert not twice
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5], tail)
    assert got_corr == ref_corr > 0
