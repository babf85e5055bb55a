"""`dcops detect run --metrics-listen`: what a runner or a worker of a group shows on /metrics,
over a real spool, and a real `dcops detect run` process scraped over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from detection_sink import Collected
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dcops.detect.engine import Engine
from dcops.lab.workload import events
from dcops.pipeline import Runner, SqliteSpool
from dcops.pipeline.detect_metrics import DetectMetrics
from dcops.pipeline.workers import Worker

REPO = Path(__file__).resolve().parents[3]
N = 3000


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_dirs([REPO / "soc_rules"])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _scrape(metrics: DetectMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(metrics)
    return _samples(generate_latest(reg).decode())


def test_a_plain_runner_shows_events_detections_and_lag(tmp_path: Path, engine: Engine) -> None:
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish(list(events(0, N)))
    sink = Collected()
    spool.register("detect")
    runner = Runner(spool, engine, sink, consumer="detect", batch=500)
    m = DetectMetrics(runner=runner)
    got = _scrape(m)
    lab = (("group", ""), ("worker", "detect"))
    assert got[("dcops_detect_events_total", lab)] == 0
    assert ("dcops_detect_lag_events", lab) not in got  # not sampled yet: no guess
    m.sample()
    assert _scrape(m)[("dcops_detect_lag_events", lab)] == N
    while runner.step():
        m.sample(force=True)
    got = _scrape(m)
    assert got[("dcops_detect_events_total", lab)] == N
    assert got[("dcops_detect_detections_total", lab)] == len(sink.got) > 100
    assert got[("dcops_detect_lag_events", lab)] == 0
    assert got[("dcops_detect_bus_errors_total", lab)] == 0
    assert not any(k[0].startswith("dcops_detect_partitions") for k in got)  # no group
    spool.publish(list(events(N, 25)))
    m.sample()  # not due yet: the bus is read at most every lag_every seconds
    assert _scrape(m)[("dcops_detect_lag_events", lab)] == 0
    m.sample(force=True)
    assert _scrape(m)[("dcops_detect_lag_events", lab)] == 25
    spool.close()  # a bus that does not answer: counted, the last sample kept
    m2 = DetectMetrics(runner=runner, unavailable=(sqlite3.ProgrammingError,))
    m2.sample()
    got = _scrape(m2)
    assert got[("dcops_detect_bus_errors_total", lab)] == 1
    assert ("dcops_detect_lag_events", lab) not in got


def test_a_worker_group_shows_its_partitions(tmp_path: Path, engine: Engine) -> None:
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish(list(events(0, N)))
    workers = [Worker(spool, engine, Collected(), group="soc", worker_id=w, partitions=4,
                      batch=500) for w in ("a", "b")]
    metrics = [DetectMetrics(worker=w) for w in workers]
    for w in workers:
        w.join()
    for _ in range(200):
        busy = sum(w.step() for w in workers)
        for m in metrics:
            m.sample(force=True)
        if not busy:
            break
    got = [_scrape(m) for m in metrics]
    labs = [(("group", "soc"), ("worker", w)) for w in ("a", "b")]
    owned = [g[("dcops_detect_partitions_owned", lab)] for g, lab in zip(got, labs, strict=True)]
    assert sum(owned) == 4 and min(owned) >= 1, owned
    for g, lab, w in zip(got, labs, workers, strict=True):
        assert g[("dcops_detect_partitions", lab)] == 4
        assert g[("dcops_detect_partitions_taken_total", lab)] == w.stats.taken >= 1
        assert g[("dcops_detect_partitions_released_total", lab)] == w.stats.released
        assert g[("dcops_detect_partitions_lost_total", lab)] == 0
        assert g[("dcops_detect_stray_events", lab)] == 0  # the spool has no subjects
        assert g[("dcops_detect_lag_events", lab)] == 0  # caught up
        assert g[("dcops_detect_events_total", lab)] == w.stats.events > 0
    # on the spool every owned partition reads the whole log
    assert sum(g[("dcops_detect_events_total", lab)] for g, lab in zip(got, labs, strict=True)) \
        == 4 * N
    for w in workers:
        w.close()
    got = _scrape(metrics[0])
    assert got[("dcops_detect_partitions_owned", labs[0])] == 0
    spool.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_running_detect_run_serves_metrics(tmp_path: Path) -> None:
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish(list(events(0, N)))
    spool.close()
    port = _free_port()
    env = dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcops", "detect", "run", "--bus", str(tmp_path / "spool.db"),
         "--db", f"sqlite:///{tmp_path / 'alerts.db'}", "--worker-group", "soc",
         "--partitions", "2", "--worker-id", "w1", "--metrics-listen", f"127.0.0.1:{port}"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    lab = (("group", "soc"), ("worker", "w1"))
    got: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    got = _samples(r.read().decode())
            except (urllib.error.URLError, ConnectionError):
                got = {}
            if got.get(("dcops_detect_events_total", lab)) == 2 * N:
                break
            time.sleep(0.3)
        assert got.get(("dcops_detect_events_total", lab)) == 2 * N, got
        assert got[("dcops_detect_partitions_owned", lab)] == 2
        assert got[("dcops_detect_partitions", lab)] == 2
        assert got[("dcops_detect_detections_total", lab)] > 100
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert f"metrics at http://127.0.0.1:{port}/metrics" in out


def test_a_busy_metrics_port_is_refused_before_detection_starts(tmp_path: Path) -> None:
    """Another process on the port: a clear error naming the address, exit 1, no traceback."""
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.publish(list(events(0, N)))
    spool.close()
    env = dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "dcops", "detect", "run", "--bus", str(tmp_path / "spool.db"),
             "--db", f"sqlite:///{tmp_path / 'alerts.db'}", "--once",
             "--metrics-listen", f"127.0.0.1:{port}"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"cannot listen on 127.0.0.1:{port} for /metrics" in out, out
    assert "choose another address" in out, out
    assert "Traceback" not in out, out
