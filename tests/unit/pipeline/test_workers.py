"""A worker group raises what one process raises, also when a worker dies and another takes over."""

from __future__ import annotations

from pathlib import Path

import pytest
from detection_sink import Collected

from dcops.detect.engine import Engine
from dcops.errors import ConfigError
from dcops.lab.workload import events
from dcops.pipeline import SqliteSpool
from dcops.pipeline.workers import PartitionEngine, Worker

REPO = Path(__file__).resolve().parents[3]
N = 6000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_dirs([REPO / "soc_rules"])


@pytest.fixture(scope="module")
def reference(engine: Engine) -> set[str]:
    import copy

    dets = copy.deepcopy(engine).process(list(events(0, N)))
    assert len(dets) > 300 and any(d.event_ids and len(d.event_ids) >= 10 for d in dets)
    return {d.id for d in dets}


def _spool(tmp_path: Path) -> SqliteSpool:
    s = SqliteSpool(tmp_path / "spool.db")
    s.publish(list(events(0, N)))
    return s


def _drain(*workers: Worker, rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if not sum(w.step() for w in workers):
            return
    raise AssertionError("workers did not catch up")


def test_each_event_is_handled_by_the_partitions_one_process_would_need(engine: Engine) -> None:
    parts = [PartitionEngine(engine, p, 4) for p in range(4)]
    for ev in events(0, 2000):
        shares = [{e.id: (s, f) for e, s, f in pe.items([ev])} for pe in parts]
        singles = sum(1 for sh in shares if sh.get(ev.id, (False,))[0])
        assert singles == 1, ev  # its single-event detections are raised exactly once


@pytest.mark.parametrize("snapshot_every", [0.0, 1e9], ids=["snapshots", "refeed-only"])
def test_two_workers_then_one_dies_raise_what_one_process_raises(
        tmp_path: Path, engine: Engine, reference: set[str], snapshot_every: float) -> None:
    bus, sink, clock = _spool(tmp_path), Collected(), Clock()

    def worker(name: str) -> Worker:
        return Worker(bus, engine, sink, group="g", worker_id=name, partitions=4, ttl=10,
                      batch=500, snapshot_every=snapshot_every, clock=clock)

    a, b = worker("a"), worker("b")
    a.step()
    b.step()
    clock.now += 4  # a's next rebalance sees b and gives back its extra partitions
    a._next_renew = b._next_renew = 0.01
    for _ in range(3):
        a.step()
        b.step()
    assert sorted(a.stats.owned + b.stats.owned) == [0, 1, 2, 3]
    assert a.stats.owned and b.stats.owned, (a.stats, b.stats)
    # a is SIGKILLed: it stops, holding its leases; b takes over once they expire
    clock.now += 11
    b._next_renew = 0.01
    b.step()
    b._next_renew = 0.01
    b.step()
    assert b.stats.owned == [0, 1, 2, 3]
    _drain(b)
    got = {d.id for d in sink.got}
    assert got == reference
    for p in range(4):
        assert bus.cursor(f"g/p{p}") == N


def test_a_worker_with_another_partition_count_is_refused(tmp_path: Path,
                                                          engine: Engine) -> None:
    bus = _spool(tmp_path)
    Worker(bus, engine, Collected(), group="g", worker_id="a", partitions=4).step()
    other = Worker(bus, engine, Collected(), group="g", worker_id="b", partitions=8)
    with pytest.raises(ConfigError, match="has 4 partitions on the bus, this worker was given 8"):
        other.step()


def test_on_the_spool_a_group_reads_the_whole_log_and_joining_counts_members(
        tmp_path: Path, engine: Engine) -> None:
    bus = _spool(tmp_path)
    a = Worker(bus, engine, Collected(), group="g", worker_id="a", partitions=2)
    b = Worker(bus, engine, Collected(), group="g", worker_id="b", partitions=2)
    assert not a.by_subject  # the spool has no subjects: every partition reads the log
    assert a.join() == 1 and b.join() == 2  # `--once` runners join before taking partitions
    with pytest.raises(ConfigError, match="--cross-host-rules 'never': expected refuse or skip"):
        Worker(bus, engine, Collected(), group="g", worker_id="c", partitions=2,
               cross_host_rules="never")


def test_a_worker_stalled_past_its_lease_cannot_move_the_new_owners_cursor(
        tmp_path: Path, engine: Engine, reference: set[str]) -> None:
    """a stalls mid-run (a bus failover, a paused VM) until its leases expire; b takes its
    partitions; a comes back and finishes the batch it was in before it rebalances. Its ack is
    refused (the cursor is claimed by b), a drops the partitions, and the detections are still
    exactly one process's: a's late batch did not move the cursor past events b's windows
    never saw."""
    bus, sink, clock = _spool(tmp_path), Collected(), Clock()

    def worker(name: str) -> Worker:
        return Worker(bus, engine, sink, group="g", worker_id=name, partitions=4, ttl=10,
                      batch=500, snapshot_every=0.0, clock=clock)

    a, b = worker("a"), worker("b")
    a.step()
    b.step()
    clock.now += 4
    a._next_renew = b._next_renew = 0.01
    for _ in range(3):
        a.step()
        b.step()
    mine = list(a.stats.owned)
    assert mine and b.stats.owned
    clock.now += 11  # a is stalled: its leases run out, b takes its partitions
    b._next_renew = 0.01
    b.step()
    assert b.stats.owned == [0, 1, 2, 3]
    a._next_renew = float("inf")  # a resumes mid-step, before its next rebalance
    a.step()
    assert a.runners == {} and a.stats.lost == len(mine), a.stats
    _drain(b)
    assert {d.id for d in sink.got} == reference
    for p in range(4):
        assert bus.cursor(f"g/p{p}") == N
