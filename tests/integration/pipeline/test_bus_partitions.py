"""A bus partitioned by host (`partitions=S`) on the real 3-node cluster: each partition reads only
its subject (a plain reader still reads everything: the contract suite runs on a partitioned bus
too, test_bus_contract_jetstream.py), stray subjects are counted, and a worker group
refuses correlations across hosts."""

from __future__ import annotations

import copy
import itertools
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from natscluster import NatsCluster

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "pipeline"))  # test sinks
from detection_sink import Collected

from dcops.detect.engine import Engine
from dcops.errors import ConfigError
from dcops.lab.workload import events
from dcops.pipeline.jetstream import JetStreamBus
from dcops.pipeline.jetstream.subjects import partition_of
from dcops.pipeline.workers import Worker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
N = 4000


def _bus(cluster: NatsCluster, prefix: str, partitions: int) -> JetStreamBus:
    url = f"{cluster.url}?replicas=3&prefix={prefix}&partitions={partitions}"
    return cluster.run(lambda: JetStreamBus(url, publish_timeout=30))


def test_each_partition_reads_only_its_hosts_and_catches_up_to_the_end(
        nats_cluster: NatsCluster, bus_prefix: str) -> None:
    bus = _bus(nats_cluster, bus_prefix, 2)
    try:
        evs = list(events(0, N))
        bus.publish(evs)
        seen: dict[int, list[str]] = {}
        behind = []
        for p in (0, 1):
            view = bus.partition(p)
            name = f"g/p{p}"
            view.register(name)
            ids: list[str] = []
            last = 0
            while batch := view.fetch(name, 700):
                assert all(a[0] < b[0] for a, b in itertools.pairwise(batch))
                assert batch[0][0] > last  # stream order, after the cursor
                ids += [e.id for _, e in batch]
                assert {partition_of(e, 2) for _, e in batch} == {p}
                last = batch[-1][0]
                view.ack(name, last)
            seen[p] = ids
            # caught up: the cursor moves to the stream's end once it stayed caught up 2 s
            assert bus.cursor(name) == last <= bus.last_position()
            behind.append(last < bus.last_position())
            view.fetch(name, 700)
            time.sleep(view.IDLE_ACK_SECONDS + 0.2)
            assert view.fetch(name, 700) == []
            assert bus.cursor(name) == bus.last_position()
        assert any(behind)  # one partition's last event is not the stream's last
        assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == sorted(e.id for e in evs)  # every event once
        # a plain consumer reads all of them
        bus.register("plain")
        got = bus.fetch("plain", N + 10)
        assert len(got) == N
        with pytest.raises(Exception, match=re.escape("partition 2: this bus has partitions=2")):
            bus.partition(2)
    finally:
        bus.close()


def test_events_no_partition_reads_are_counted_and_logged(
        nats_cluster: NatsCluster, bus_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    two, old, three = (_bus(nats_cluster, bus_prefix, s) for s in (2, 1, 3))
    try:
        two.publish(list(events(0, 200)))
        assert two.stray_subjects() == {}
        old.publish(list(events(200, 30)))  # published before partitioning
        three.publish(list(events(230, 300)))  # a collector with partitions=3: p2 is unread
        stray = two.stray_subjects()
        p2 = sum(1 for e in events(230, 300) if partition_of(e, 3) == 2)
        assert stray == {f"{bus_prefix}.events.dc1.syslog": 30,
                         f"{bus_prefix}.events.dc1.syslog.p2": p2}, stray
        w = Worker(two, Engine.from_dirs([REPO / "soc_rules"]), Collected(), group="g",
                   worker_id="w1", partitions=2)
        w.step()  # takes both partitions (the only worker), partition 0's owner checks
        assert w.stats.stray == 30 + p2
        assert "no partition reads" in caplog.text and f"{bus_prefix}.events.dc1.syslog (30)" \
            in caplog.text
        w.close()
    finally:
        for b in (two, old, three):
            b.close()


def test_a_group_refuses_cross_host_correlations_or_skips_them(
        nats_cluster: NatsCluster, bus_prefix: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "soc_rules", rules)
    (rules / "spray.yml").write_text(
        (REPO / "tests/unit/pipeline/test_partitions.py").read_text()
        .split('CROSS_HOST_RULE = """\\\n')[1].split('"""')[0])
    engine = Engine.from_dirs([rules])
    bus = _bus(nats_cluster, bus_prefix, 2)
    try:
        with pytest.raises(ConfigError, match=r"1 correlation\(s\) group events of several "
                           r"hosts.*SSH Password Spray Across Hosts.*group-by source\.ip.*"
                           r"plain `dcops detect run`.*--cross-host-rules skip"):
            Worker(bus, engine, Collected(), group="g", worker_id="w", partitions=2)
        w = Worker(bus, engine, Collected(), group="g", worker_id="w", partitions=2,
                   cross_host_rules="skip")
        assert w.stats.skipped == ["5b0f3d7e-8a55-4a3c-9d55-3f1f0d2a7c11"]
        with pytest.raises(ConfigError, match=r"--partitions 4 but the bus has partitions=2"):
            Worker(bus, Engine.from_dirs([REPO / "soc_rules"]), Collected(), group="g",
                   worker_id="w", partitions=4)
    finally:
        bus.close()


def test_two_workers_raise_exactly_what_one_process_raises(
        nats_cluster: NatsCluster, bus_prefix: str) -> None:
    engine = Engine.from_dirs([REPO / "soc_rules"])
    evs = list(events(0, N))
    reference = copy.deepcopy(engine).process(evs)
    assert any(len(d.event_ids) > 1 for d in reference)
    buses = [_bus(nats_cluster, bus_prefix, 2) for _ in range(2)]
    try:
        buses[0].publish(evs)
        sinks = [Collected(), Collected()]
        workers = [Worker(b, engine, s, group="g", worker_id=f"w{i}", partitions=2, ttl=30)
                   for i, (b, s) in enumerate(zip(buses, sinks, strict=True))]
        for _ in range(3):  # both register, then share: one partition each
            for w in workers:
                w._next_renew = 0.0  # rebalance now (members are seen on the next round)
                w.step()
        assert sorted(p for w in workers for p in w.runners) == [0, 1]
        assert all(len(w.runners) == 1 for w in workers)
        for _ in range(100):
            if not sum(w.step() for w in workers):
                break
        read = [w.stats.events for w in workers]
        assert sum(read) == N and min(read) > 0  # shared: none read the whole stream
        got = [d.id for s in sinks for d in s.got]
        assert sorted(set(got)) == sorted({d.id for d in reference})
        for w in workers:
            w.close()
    finally:
        for b in buses:
            b.close()


def test_a_reader_whose_consumer_the_server_recreated_never_returns_a_position_twice(
        nats_cluster: NatsCluster, bus_prefix: str) -> None:
    """The server re-creates an ephemeral consumer (its node restarted, its assignment re-sent)
    from its configuration: it starts again where it was first opened. Played here by deleting
    a partition reader's consumer and creating one of the same name from position 0 behind its
    back. The next fetch after a position still returns exactly the events after it (the
    reader notices the repeat, is dropped and a new one opened at the position); before, it
    returned the first batch again and a worker fed it twice to its correlation windows."""
    from nats.js import api

    bus = _bus(nats_cluster, bus_prefix, 2)
    try:
        bus.publish(list(events(0, 3000)))
        view = bus.partition(0)
        first = view.fetch_after(0, 400)
        after = first[-1][0]
        reader = bus._session._readers[(view.subject_filter, after)]
        stream, name = bus.config.events_stream, reader.name

        async def recreate() -> None:
            js = bus._session.js
            await js.delete_consumer(stream, name)
            await js.add_consumer(stream, api.ConsumerConfig(
                durable_name=name, ack_policy=api.AckPolicy.NONE, mem_storage=True,
                num_replicas=1, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=1, filter_subject=view.subject_filter, inactive_threshold=60))

        bus._call(recreate(), "re-create the consumer")
        second = view.fetch_after(after, 400)
        assert second and second[0][0] > after
        fresh = bus.partition(0).fetch_after(after, 400)  # what a new reader returns there
        assert [p for p, _ in second] == [p for p, _ in fresh]
        assert not {e.id for _, e in first} & {e.id for _, e in second}
    finally:
        bus.close()
