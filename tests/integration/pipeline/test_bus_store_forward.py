"""A collector on a NATS bus keeps accepting while the whole cluster is down, then drains once.

`dcops collect logs --bus nats://...` (a real process in the cluster's controller namespace)
tails a file that a writer appends numbered lines to. All three nodes are stopped for OUTAGE
seconds mid-stream: the collector keeps reading into its local outbox (checked in the outbox
file while the cluster is down), the nodes restart from their store_dir, and the stream must end
with every line exactly once. The bench (`scripts/bench/bus_throughput.py --outage 60`) runs the
same with a 60 s outage.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from natscluster import NatsCluster

from dcops.pipeline.jetstream import JetStreamBus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
OUTAGE = 10.0  # seconds the whole cluster is down
PER_PHASE = 1500  # lines written before, during and after the outage
LINE = re.compile(rb"line (\d{6})")


def _write(log: Path, start: int, n: int, pace: float) -> None:
    """Append lines start..start+n-1, spread over about `pace` seconds."""
    chunk = max(1, n // 20)
    for k in range(start, start + n, chunk):
        with log.open("a", encoding="utf-8") as f:
            f.writelines(f"Dec  3 06:00:00 web1 app[7]: line {i:06d}\n"
                         for i in range(k, min(k + chunk, start + n)))
        time.sleep(pace / 20)


def _outbox_events(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])


def _stream_lines(bus: JetStreamBus) -> Counter[int]:
    seen: Counter[int] = Counter()
    pos = 0
    while got := bus.fetch_after(pos, 2000):
        for _, e in got:
            m = LINE.search(str(e.raw).encode())
            assert m, e.raw
            seen[int(m.group(1))] += 1
        pos = got[-1][0]
    return seen


def test_collector_buffers_through_a_cluster_outage_and_delivers_every_line_once(
        nats_cluster: NatsCluster, bus_prefix: str, tmp_path: Path) -> None:
    log, outbox = tmp_path / "app.log", tmp_path / "outbox.db"
    log.touch()
    url = f"{nats_cluster.url}?replicas=3&prefix={bus_prefix}&publish_timeout=30s"
    env = dict(os.environ, DCOPS_STATE_DIR=str(tmp_path / "state"),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    collector = subprocess.Popen(
        ["ip", "netns", "exec", nats_cluster.controller, sys.executable, "-m", "dcops",
         "collect", "logs", str(log), "--bus", url, "--spool", str(outbox), "--interval", "0.1"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = nats_cluster.run(lambda: JetStreamBus(url))
    try:
        _write(log, 0, PER_PHASE, 2.0)
        deadline = time.monotonic() + 60
        while reader.count() < PER_PHASE and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reader.count() == PER_PHASE, "the collector did not forward before the outage"

        t_down = time.monotonic()
        for n in nats_cluster.nodes:  # the whole bus goes away
            nats_cluster.kill(n)
        _write(log, PER_PHASE, PER_PHASE, OUTAGE / 2)
        while time.monotonic() - t_down < OUTAGE:
            time.sleep(0.2)
        buffered = _outbox_events(outbox)
        assert buffered == 2 * PER_PHASE, f"outbox held {buffered} while the bus was down"
        assert collector.poll() is None, "the collector died while the bus was down"

        for n in nats_cluster.nodes:
            nats_cluster._spawn(n)
        for n in nats_cluster.nodes:
            nats_cluster.wait_healthy(n, 60)
        _write(log, 2 * PER_PHASE, PER_PHASE, 2.0)
        total = 3 * PER_PHASE
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if reader.count() >= total:
                    break
            except ConnectionError:  # the reader's own connection is coming back too
                pass
            time.sleep(0.5)
        drained = time.monotonic() - t_down - OUTAGE
        seen = _stream_lines(reader)
    finally:
        collector.send_signal(signal.SIGTERM)
        out, _ = collector.communicate(timeout=30)
        reader.close()
    text = out.decode(errors="replace")
    lost = [i for i in range(total) if seen[i] == 0]
    twice = [i for i, c in seen.items() if c > 1]
    print(f"\nstore and forward: {total} lines, outage {OUTAGE:.0f}s (all 3 nodes down), "
          f"{2 * PER_PHASE} in the outbox at its end, stream complete {drained:.1f}s after "
          f"the restart; lost {len(lost)}, duplicated {len(twice)}")
    assert not lost, f"lost {len(lost)} lines, first {lost[:5]}; collector said:\n{text}"
    assert not twice, f"{len(twice)} lines twice, first {twice[:5]}"
    assert sum(seen.values()) == total
    assert collector.returncode == 0, text
    assert "events forwarded to the bus" in text, text
