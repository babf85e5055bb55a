"""Two real `dcops detect run --worker-group` processes on the real 3-node cluster, scraped on
their /metrics: they own one partition each (P = 2), read every event once between them,
and stray events show on partition 0's owner once a collector publishes with another
partitions=."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from natscluster import NatsCluster
from prometheus_client.parser import text_string_to_metric_families

from dcops.lab.workload import events
from dcops.pipeline.jetstream import JetStreamBus
from dcops.pipeline.jetstream.subjects import partition_of

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
N = 2000
PORTS = {"wA": 19722, "wB": 19723}  # in the cluster's controller namespace (fresh, empty)


def _metrics(cluster: NatsCluster, port: int) -> dict[str, float]:
    """name -> value of one worker's /metrics (one series per family here)."""
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    try:
        text = cluster.run(get)
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {s.name: s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name.startswith("dcops_detect_")}


def _wait(what: str, cond: Callable[[], bool], procs: dict[str, subprocess.Popen[bytes]],
          logs: dict[str, Path], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n, p in procs.items():
            assert p.poll() is None, f"{n} exited:\n{logs[n].read_text()[-3000:]}"
        if cond():
            return
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:.0f}s; "
                + "; ".join(f"{n}: {logs[n].read_text()[-1500:]}" for n in logs))


def test_a_worker_group_on_metrics_owns_every_partition_and_shows_stray_events(
        nats_cluster: NatsCluster, bus_prefix: str, tmp_path: Path) -> None:
    url = f"{nats_cluster.url}?replicas=3&prefix={bus_prefix}&partitions=2"
    env = dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    logs = {n: tmp_path / f"{n}.log" for n in PORTS}
    pub = nats_cluster.run(lambda: JetStreamBus(url, publish_timeout=30))
    other = nats_cluster.run(lambda: JetStreamBus(url.replace("partitions=2", "partitions=3"),
                                                  publish_timeout=30))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for n, port in PORTS.items():
            with logs[n].open("ab") as out:
                procs[n] = subprocess.Popen(
                    ["ip", "netns", "exec", nats_cluster.controller, sys.executable, "-m",
                     "dcops", "detect", "run", "--bus", url, "--db",
                     f"sqlite:///{tmp_path / 'alerts.db'}", "--worker-group", "g",
                     "--lease-ttl", "3", "--worker-id", n,
                     "--metrics-listen", f"127.0.0.1:{port}"],
                    env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        seen: dict[str, dict[str, float]] = {}

        def shared() -> bool:
            for n, port in PORTS.items():
                seen[n] = _metrics(nats_cluster, port)
            return all(m.get("dcops_detect_partitions_owned") == 1 for m in seen.values())

        _wait("one partition each", shared, procs, logs)
        pub.publish(list(events(0, N)))  # once shared: each worker reads its own hosts

        def shared_and_caught_up() -> bool:
            for n, port in PORTS.items():
                seen[n] = _metrics(nats_cluster, port)
            return (all(m.get("dcops_detect_partitions_owned") == 1 for m in seen.values())
                    and sum(m.get("dcops_detect_events_total", 0) for m in seen.values()) == N
                    and all(m.get("dcops_detect_lag_events") == 0 for m in seen.values()))

        _wait("every event read once, no lag", shared_and_caught_up, procs, logs)
        for m in seen.values():
            assert m["dcops_detect_partitions"] == 2
            assert m["dcops_detect_events_total"] > 0  # each read its own hosts only
            assert m["dcops_detect_stray_events"] == 0
            assert m["dcops_detect_bus_errors_total"] == 0
        assert sum(m["dcops_detect_detections_total"] for m in seen.values()) > 0

        # A collector with partitions=3: its partition-2 events are on a subject no one reads.
        more = list(events(N, 300))
        stray = sum(1 for e in more if partition_of(e, 3) == 2)
        assert stray > 0
        other.publish(more)

        def stray_shown() -> bool:
            for n, port in PORTS.items():
                seen[n] = _metrics(nats_cluster, port)
            return sorted(m.get("dcops_detect_stray_events", -1) for m in seen.values()) \
                == [0, stray]

        _wait(f"{stray} stray events on partition 0's owner, 0 on the other", stray_shown,
              procs, logs, timeout=20)
        for p in procs.values():
            p.terminate()
        for n, p in procs.items():
            assert p.wait(30) == 0, logs[n].read_text()[-3000:]
            assert f"worker {n}: " in logs[n].read_text()  # its stop line
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(30)
        pub.close()
        other.close()
