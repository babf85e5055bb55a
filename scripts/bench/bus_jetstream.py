#!/usr/bin/env python3
"""JetStream bus throughput: events/s published and fetched through a real local cluster.

Starts a nats-server cluster on loopback (3 nodes, R3 by default; `--nodes 1` for R1) with the
test helper `tests/integration/pipeline/natscluster.py`, then through `dcops.pipeline.JetStream`
bus: publishes N syslog-sized events in batches (acked, Nats-Msg-Id, bounded in flight), and
fetches + acks them in batches as the detection runner does. The SQLite spool runs the same
loop for comparison. Numbers depend on the machine and its load: print `uptime` beside them.

Usage: .venv/bin/python scripts/bench/bus_jetstream.py [--events N] [--batch B] [--nodes 1|3]
       [--inflight K]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "pipeline"))

from natscluster import NatsCluster  # noqa: E402

from dcops.model.event import Event, LogSource  # noqa: E402
from dcops.pipeline import SqliteSpool  # noqa: E402
from dcops.pipeline.jetstream import JetStreamBus  # noqa: E402

T0 = datetime.now(UTC)


def event(i: int) -> Event:
    return Event(id=f"bench{i}", timestamp=T0, source="syslog_tcp",
                 logsource=LogSource("linux", "sshd"),
                 fields={"site.name": "dc1", "host.name": "web01", "user.name": "alice",
                         "source.ip": "10.0.0.1", "event.action": "ssh_login_failed"},
                 raw="<38>Dec  2 10:00:00 web01 sshd[123]: Failed password for alice from "
                     "10.0.0.1 port 52144 ssh2")


def run(bus: JetStreamBus | SqliteSpool, n: int, batch: int) -> tuple[float, float]:
    events = [event(i) for i in range(n)]
    t = time.monotonic()
    for k in range(0, n, batch):
        bus.publish(events[k:k + batch])
    pub = n / (time.monotonic() - t)
    t = time.monotonic()
    got = 0
    while True:
        b = bus.fetch("bench", batch)
        if not b:
            break
        got += len(b)
        bus.ack("bench", b[-1][0])
    assert got == n, (got, n)
    return pub, n / (time.monotonic() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--nodes", type=int, choices=(1, 3), default=3)
    ap.add_argument("--inflight", type=int, default=500)
    args = ap.parse_args()
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{args.events} events, batches of {args.batch}")
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as d:
        spool = SqliteSpool(Path(d) / "spool.db")
        pub, fetch = run(spool, args.events, args.batch)
        spool.close()
        print(f"sqlite spool           publish {pub:8.0f} ev/s   fetch+ack {fetch:8.0f} ev/s")
        cluster = NatsCluster(Path(d) / "nats", size=args.nodes)
        cluster.start()
        try:
            url = f"{cluster.url}?replicas={args.nodes}&prefix=b{secrets.token_hex(3)}"
            bus = JetStreamBus(url, max_inflight=args.inflight)
            try:
                pub, fetch = run(bus, args.events, args.batch)
            finally:
                bus.close()
            print(f"jetstream {args.nodes} node(s) R{args.nodes} publish {pub:8.0f} ev/s   "
                  f"fetch+ack {fetch:8.0f} ev/s")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
