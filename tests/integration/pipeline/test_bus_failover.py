"""SIGKILL the stream leader of a 3-node JetStream cluster mid-stream: nothing lost, nothing twice.

A publisher thread sends numbered events while a consumer (its own connection) fetches and acks;
the node leading the events stream is killed with SIGKILL and restarted from its store_dir. The
stream must end with every number exactly once, the consumer must have seen each exactly once,
and the restarted node must catch up to the same stream.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from natscluster import NatsCluster, Node

from dcops.model.event import Event, LogSource
from dcops.pipeline.jetstream import JetStreamBus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 20_000
BATCH = 500
T0 = datetime.now(UTC)


def numbered(i: int) -> Event:
    return Event(id=f"n{i:06d}", timestamp=T0, source=("syslog", "snmp_trap")[i % 2],
                 logsource=LogSource("linux", "sshd"),
                 fields={"n": i, "site.name": ("Đồng Nai", "DC2")[i % 2]}, raw=f"event {i}")


def stream_view(cluster: NatsCluster, node: Node, name: str) -> dict[str, object]:
    for acct in cluster.jsz(node).get("account_details", []):  # type: ignore[union-attr]
        for s in acct.get("stream_detail", []):
            if s["name"] == name:
                return dict(s)
    return {}


def test_sigkill_stream_leader_while_publishing(nats_cluster: NatsCluster,
                                                bus_prefix: str) -> None:
    url = f"{nats_cluster.url}?replicas=3&prefix={bus_prefix}&publish_timeout=90s"
    pub, sub = nats_cluster.run(lambda: (JetStreamBus(url), JetStreamBus(url)))
    stream = pub.config.events_stream
    seen: Counter[int] = Counter()
    errors: list[BaseException] = []
    stop = threading.Event()
    published = threading.Event()
    progress = [0]
    slowest = [0.0]

    def publisher() -> None:
        try:
            for k in range(0, TOTAL, BATCH):
                t = time.monotonic()
                pub.publish([numbered(i) for i in range(k, k + BATCH)])
                slowest[0] = max(slowest[0], time.monotonic() - t)
                progress[0] = k + BATCH
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        published.set()

    def consumer() -> None:
        try:
            while not stop.is_set():
                got = sub.fetch("detect", 1000)
                if not got:
                    if published.is_set() and sub.cursor("detect") >= pub.count():
                        return
                    time.sleep(0.05)
                    continue
                seen.update(int(e.fields["n"]) for _, e in got)
                sub.ack("detect", got[-1][0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher), threading.Thread(target=consumer)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while progress[0] < TOTAL // 3 and not errors and not published.is_set():
            time.sleep(0.05)
        leader_name = stream_view(nats_cluster, nats_cluster.nodes[0], stream)["cluster"]
        leader = next(n for n in nats_cluster.nodes
                      if n.name == leader_name["leader"])  # type: ignore[index]
        killed_at = progress[0]
        nats_cluster.kill(leader)
        time.sleep(2)
        nats_cluster.restart(leader)
        published.wait(180)
        stop_wait = time.monotonic() + 120
        for t in threads:
            t.join(max(1.0, stop_wait - time.monotonic()))
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    elapsed = time.monotonic() - started
    try:
        assert not errors, errors
        assert published.is_set()
        stored = [int(e.fields["n"]) for _, e in pub.fetch_after(0, TOTAL * 2)]
        counts = Counter(stored)
        lost = TOTAL - len(counts)
        twice = sum(c - 1 for c in counts.values())
        consumer_twice = sum(c - 1 for c in seen.values())
        print(f"\nkilled {leader.name} (stream leader) after {killed_at} events; "
              f"{TOTAL} published in {elapsed:.1f}s; slowest batch {slowest[0]:.1f}s; "
              f"stored {len(stored)}, lost {lost}, duplicated {twice}; consumer saw "
              f"{len(seen)} distinct, {consumer_twice} twice")
        assert sorted(counts) == list(range(TOTAL))
        assert lost == 0 and twice == 0 and pub.count() == TOTAL
        assert sorted(seen) == list(range(TOTAL)) and consumer_twice == 0
        # the restarted node caught up from its store_dir and its peers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = stream_view(nats_cluster, leader, stream).get("state", {})
            if state.get("messages") == TOTAL:  # type: ignore[union-attr]
                break
            time.sleep(0.5)
        assert state.get("messages") == TOTAL, state  # type: ignore[union-attr]
    finally:
        pub.close()
        sub.close()
