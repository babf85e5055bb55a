"""Detection workers that scale out: one worker group, P partitions, each owned by one worker.

On a JetStream bus with `partitions=P` (docs/scale.md) the work is shared by subject: the
collectors publish each event to the partition of its host (`crc32(host) % P`,
dcops.pipeline.jetstream.subjects), and partition p reads only `<prefix>.events.*.*.p<p>` and runs
the whole engine, single-event rules and every correlation, on it. This is exact for a
correlation whose group-by holds a host field (`host_local`: every event of one group has one
host, so one partition); a correlation that groups across hosts is refused at start (or skipped
with a warning, `cross_host="skip"`). Partition 0's owner reports events on subjects no
partition reads (`stray`: a collector with another `partitions=`, or events from before).

On JetStream, P must equal the bus's `partitions=` (refused otherwise). On the SQLite spool every
partition reads the whole log and keeps its share: failover, not throughput (on one machine,
`dcops detect scan --workers` is the throughput path).

Routing rule there (the one `dcops detect scan --workers` uses, dcops.detect.parallel): an event
that can feed a correlation goes, for each such correlation, to partition
`crc32(its group-by values without alias) % P`, which feeds that correlation only; its
single-event detections are raised by the partition of its first correlation. An event that
feeds no correlation belongs to partition `crc32(event id) % P`. Every event of a correlation
group lands in one partition and is read there in stream order, so each partition raises exactly
what one process would for its groups. Limits: a correlation whose group-by fields all carry an
alias (a different field per base rule) keeps all its groups in partition 0; the `max_groups`
bound applies per partition.

Ownership: a partition is owned through a lease (`lease/<group>/p<i>` in the bus's checkpoint
store, compare-and-set, renewed every ttl/3, expiring after `ttl` seconds). The lease says who
may take the partition; the cursor says who may move it: a worker that takes a partition claims
its cursor (FencedBus) before reading the saved windows, and every ack names that claim. A
worker stalled past its lease (a bus failover, a paused VM) that comes back mid-batch gets
CursorTakenError at its next ack and drops the partition; it cannot move the cursor past events
the new owner's windows never saw. Workers register in
`members/<group>`; each aims at ceil(P / live workers) partitions, takes free or expired ones and
gives back extras (snapshot first). A partition's cursor and correlation windows live on the bus
under `<group>/p<i>` (Runner: snapshot every few seconds, cursor after the alert store took the
detections), so the next owner restores the windows and re-feeds the events after the snapshot:
detection ids are stable, so re-raised detections change nothing in the store.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from dcops.detect.correlate import CompiledCorrelation
from dcops.detect.engine import HOST_FIELDS, Engine
from dcops.detect.parallel import Router
from dcops.errors import ConfigError
from dcops.model.event import Detection, Event
from dcops.model.sinks import DetectionSink
from dcops.pipeline.bus import Bus, CursorTakenError, FencedBus
from dcops.pipeline.engine_state import SnapshottingEngine, supports_snapshot
from dcops.pipeline.runner import Runner

log = logging.getLogger(__name__)
# Group-by fields that name the event's host. `Computer` is a Windows event's host: the Windows
# parser sets host.name from it (dcops.collectors.parsers.windows) when the event has no other.
HOST_GROUP_FIELDS = frozenset(HOST_FIELDS) | {"Computer"}
CROSS_HOST_CHOICES = ("refuse", "skip")


def host_local(corr: CompiledCorrelation) -> bool:
    """True when a correlation groups by a host field (directly, or an alias that means a host
    field for every base rule), so all events of one of its groups come from one host."""
    for g in corr.group_by:
        mapping = corr.aliases.get(g)
        if mapping:
            if all(corr.field_for(g, rid) in HOST_GROUP_FIELDS for rid in corr.rule_ids):
                return True
        elif g in HOST_GROUP_FIELDS:
            return True
    return False


def cross_host(engine: Engine) -> list[CompiledCorrelation]:
    """The engine's correlations that may group events of several hosts together."""
    return [st.corr for st in engine.correlations if not host_local(st.corr)]


def without_correlations(engine: Engine, ids: set[str]) -> Engine:
    """The same rules with the correlations `ids` left out (fresh windows)."""
    rs = copy.copy(engine.ruleset)
    rs.correlations = [c for c in rs.correlations if c.id not in ids]
    max_groups = engine.correlations[0].max_groups if engine.correlations else 100_000
    return Engine(rs, max_groups=max_groups, tz=engine._ctx.tz)


class SubjectBus(Protocol):
    """A bus whose events are split into partitions by subject (JetStreamBus)."""

    def partition(self, p: int) -> Bus:
        """Partition p's events only."""
        ...

    def stray_subjects(self) -> dict[str, int]:
        """Event subjects no partition reads, with their counts."""
        ...


class GroupBus(FencedBus, Protocol):
    """A bus that can hold leases (compare-and-set on a checkpoint) and fence cursors."""

    def register(self, consumer: str) -> None:
        """Create a cursor at the start if it does not exist."""
        ...

    def update_checkpoint(
        self, name: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """Atomically replace a checkpoint with change(old); the value stored at the end."""
        ...


def owner_of(event_id: str, partitions: int) -> int:
    """The partition of an event that feeds no correlation."""
    return zlib.crc32(event_id.encode("utf-8", "surrogatepass")) % partitions


class PartitionEngine:
    """One partition's share of the Sigma engine: only its events, only its correlations."""

    def __init__(self, engine: Engine, partition: int, partitions: int) -> None:
        self.engine, self.partition, self.partitions = engine, partition, partitions
        self.router = Router(engine, partitions) if engine.correlations else None
        self._snap = SnapshottingEngine(engine) if supports_snapshot(engine) else None

    def items(self, events: Sequence[Event]) -> list[tuple[Event, bool, frozenset[int]]]:
        """(event, raise its single-event detections here, correlations it feeds here)."""
        out: list[tuple[Event, bool, frozenset[int]]] = []
        p = self.partition
        for ev in events:
            dest = self.router.targets(ev) if self.router is not None else {}
            if not dest:
                if owner_of(ev.id, self.partitions) == p:
                    out.append((ev, True, frozenset()))
                continue
            single = next(iter(dest)) == p
            feeds = dest.get(p)
            if single or feeds:
                out.append((ev, single, frozenset(feeds or ())))
        return out

    def process(self, events: Sequence[Event]) -> list[Detection]:
        """Match this partition's events."""
        return self.engine.process_routed(self.items(events))

    def snapshot(self) -> bytes:
        """This partition's correlation windows."""
        if self._snap is None:
            return b"{}"
        return self._snap.snapshot()

    def restore(self, state: bytes) -> None:
        """Restore this partition's correlation windows."""
        if self._snap is not None:
            self._snap.restore(state)


@dataclass(slots=True)
class GroupStats:
    """What one worker did."""

    events: int = 0
    detections: int = 0
    taken: int = 0
    released: int = 0
    lost: int = 0
    owned: list[int] = field(default_factory=list)
    stray: int = 0  # events on subjects no partition reads (last check by partition 0's owner)
    stray_subjects: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # cross-host correlations left out


class Worker:
    """One detection process of a worker group (see module doc)."""

    def __init__(
        self,
        bus: GroupBus,
        engine: Engine,
        sink: DetectionSink,
        *,
        group: str,
        worker_id: str,
        partitions: int,
        ttl: float = 15.0,
        batch: int = 1000,
        snapshot_every: float = 5.0,
        clock: Callable[[], float] = time.time,
        cross_host_rules: str = "refuse",
    ) -> None:
        if partitions < 1:
            raise ConfigError(f"--partitions {partitions}: expected 1 or more")
        if cross_host_rules not in CROSS_HOST_CHOICES:
            raise ConfigError(f"--cross-host-rules {cross_host_rules!r}: expected "
                              f"{' or '.join(CROSS_HOST_CHOICES)}")
        self.bus, self.sink = bus, sink
        self.stats = GroupStats()
        # Shared by subject when the bus is partitioned by host (JetStream `partitions=`).
        self.by_subject = callable(getattr(bus, "partition", None))
        if self.by_subject:
            have = int(getattr(getattr(bus, "config", None), "partitions", 1))
            if have != partitions:
                raise ConfigError(
                    f"--partitions {partitions} but the bus has partitions={have}: a worker "
                    f"group on JetStream has one partition per subject partition (give "
                    f"--partitions {have}, or partitions={partitions} in the bus URL of every "
                    "collector and worker)")
            wide = cross_host(engine)
            if wide and cross_host_rules == "refuse":
                names = "; ".join(f"{c.id} ({c.title}, group-by {', '.join(c.group_by) or '-'}"
                                  f"{', ' + c.path if c.path else ''})" for c in wide)
                raise ConfigError(
                    f"worker group {group!r}: {len(wide)} correlation(s) group events of "
                    f"several hosts, which partitions by host cannot see together: {names}. "
                    "Run those rules in one plain `dcops detect run` (no --worker-group) with "
                    "their own --rules directory, or give --cross-host-rules skip to run the "
                    "group without them")
            if wide:
                self.stats.skipped = [c.id for c in wide]
                log.warning("worker group %s: skipping %d cross-host correlation(s): %s "
                            "(run them in one plain `dcops detect run`)", group, len(wide),
                            ", ".join(c.title for c in wide))
                engine = without_correlations(engine, {c.id for c in wide})
        self._pristine = copy.deepcopy(engine)  # each partition starts from unfed windows
        self.group, self.worker_id, self.partitions = group, worker_id, partitions
        self.ttl, self.batch, self.snapshot_every, self.clock = ttl, batch, snapshot_every, clock
        self.runners: dict[int, Runner] = {}
        self._next_renew = 0.0
        # Cursor claims name this process and the take: a restarted worker with the same id,
        # or this one taking a partition again, is a new owner.
        self._claim = f"{worker_id}.{secrets.token_hex(4)}"

    # -- names on the bus -----------------------------------------------------------------------

    def consumer(self, p: int) -> str:
        """Cursor and state name of partition p."""
        return f"{self.group}/p{p}"

    def _lease_key(self, p: int) -> str:
        return f"lease/{self.group}/p{p}"

    # -- leases and membership -------------------------------------------------------------------

    def _check_partitions(self) -> None:
        """Every worker of a group must use the same P (stored at the group's first start)."""
        want = str(self.partitions)
        got = self.bus.update_checkpoint(f"partitions/{self.group}",
                                         lambda old: want if old is None else None)
        if got != want:
            raise ConfigError(f"worker group {self.group!r} has {got} partitions on the bus, "
                             f"this worker was given {want}")

    def _members(self) -> int:
        """Heartbeat this worker; the number of live workers of the group."""
        now = self.clock()

        def change(old: str | None) -> str:
            doc = json.loads(old) if old else {}
            doc = {w: t for w, t in doc.items() if t > now}
            doc[self.worker_id] = now + self.ttl
            return json.dumps(doc, sort_keys=True)

        got = self.bus.update_checkpoint(f"members/{self.group}", change)
        return max(1, len(json.loads(got or "{}")))

    def _lease(self, p: int) -> bool:
        """Take or renew the lease of partition p; False when another live worker holds it."""
        now = self.clock()
        me = self.worker_id

        def change(old: str | None) -> str | None:
            doc = json.loads(old) if old else None
            if doc and doc["owner"] != me and doc["until"] > now:
                return None  # held by someone else
            return json.dumps({"owner": me, "until": now + self.ttl})

        got = self.bus.update_checkpoint(self._lease_key(p), change)
        return bool(got) and json.loads(got or "{}").get("owner") == me

    def _release(self, p: int) -> None:
        me = self.worker_id

        def change(old: str | None) -> str | None:
            doc = json.loads(old) if old else None
            if not doc or doc["owner"] != me:
                return None
            return json.dumps({"owner": "", "until": 0})

        self.bus.update_checkpoint(self._lease_key(p), change)

    # -- partitions ------------------------------------------------------------------------------

    def _take(self, p: int) -> None:
        name = self.consumer(p)
        bus: FencedBus = self.bus
        engine: Any
        if self.by_subject:  # this partition's subject only, the whole engine on it
            bus = cast(FencedBus, cast(SubjectBus, self.bus).partition(p))
            fresh = copy.deepcopy(self._pristine)
            engine = SnapshottingEngine(fresh) if supports_snapshot(fresh) else fresh
        else:
            engine = PartitionEngine(copy.deepcopy(self._pristine), p, self.partitions)
        # Claim the cursor before reading the saved windows: from here on the previous
        # owner's acks are refused, so the cursor the windows are re-fed up to stays put.
        owner = f"{self._claim}.{self.stats.taken}"
        at = bus.claim(name, owner)
        runner = Runner(bus, engine, self.sink, consumer=name, batch=self.batch,
                        snapshot_every=self.snapshot_every, owner=owner)
        runner.start()  # restore the windows, re-feed after the snapshot
        self.runners[p] = runner
        self.stats.taken += 1
        log.info("worker %s: took partition %d at position %d", self.worker_id, p, at)

    def _give_back(self, p: int) -> None:
        runner = self.runners.pop(p)
        try:
            runner.snapshot()  # commits a pending batch first (a fenced ack)
        except CursorTakenError as exc:
            self._lost(p, exc)
            return
        self._release(p)
        self.stats.released += 1
        log.info("worker %s: gave back partition %d", self.worker_id, p)

    def _lost(self, p: int, why: object) -> None:
        """Drop partition p without saving anything (another worker owns it now)."""
        self.runners.pop(p, None)
        self.stats.lost += 1
        log.warning("worker %s: lost partition %d (%s)", self.worker_id, p, why)

    def rebalance(self) -> None:
        """Renew leases, drop lost partitions, take or give back to reach the fair share."""
        for p in list(self.runners):
            if not self._lease(p):  # expired and taken over: drop without saving
                self._lost(p, "its lease expired and another worker holds it")
        target = math.ceil(self.partitions / self._members())
        while len(self.runners) > target:
            self._give_back(max(self.runners))
        if len(self.runners) < target:
            start = zlib.crc32(self.worker_id.encode()) % self.partitions
            for k in range(self.partitions):
                p = (start + k) % self.partitions
                if len(self.runners) >= target:
                    break
                if p not in self.runners and self._lease(p):
                    self._take(p)
        self.stats.owned = sorted(self.runners)
        if self.by_subject and 0 in self.runners:
            self.check_stray()

    def check_stray(self) -> int:
        """Count events on subjects no partition reads; log an error naming them (again only
        when the subjects or their counts changed)."""
        found = cast(SubjectBus, self.bus).stray_subjects()
        before = self.stats.stray_subjects
        self.stats.stray_subjects = dict(found)
        self.stats.stray = sum(found.values())
        if found and found != before:  # logged when it changes, not at every rebalance
            shown = ", ".join(f"{s} ({n})" for s, n in list(found.items())[:10])
            log.error("worker group %s: %d event(s) on %d subject(s) no partition reads "
                      "(published with another partitions= or before partitioning; a plain "
                      "`dcops detect run` reads them): %s%s", self.group, self.stats.stray,
                      len(found), shown, " ..." if len(found) > 10 else "")
        return self.stats.stray

    def join(self) -> int:
        """Check the group's P and heartbeat once (before taking partitions); live workers."""
        self._check_partitions()
        return self._members()

    def step(self) -> int:
        """Rebalance when due, then one batch per owned partition; events handled."""
        now = time.monotonic()
        if now >= self._next_renew:
            if not self._next_renew:
                self._check_partitions()
            self.rebalance()
            self._next_renew = now + self.ttl / 3
        n = 0
        for p, runner in list(self.runners.items()):
            before = runner.stats.detections
            try:
                n += runner.step()
            except CursorTakenError as exc:  # stalled past the lease: the partition moved on
                self._lost(p, exc)
            self.stats.detections += runner.stats.detections - before
        self.stats.events += n
        return n

    def run(self, stop: threading.Event, idle: float = 0.2,
            on_error: Callable[[BaseException], Any] | None = None,
            unavailable: tuple[type[BaseException], ...] = (),
            after_step: Callable[[], Any] | None = None) -> None:
        """Loop until `stop` (calling `after_step` after each step: metrics); then snapshot and
        give back every partition."""
        while not stop.is_set():
            try:
                n = self.step()
                if after_step is not None:
                    after_step()
                if n == 0:
                    stop.wait(idle)
            except unavailable as exc:  # the bus is failing over: try again shortly
                if on_error is not None:
                    on_error(exc)
                stop.wait(1.0)
        self.close()

    def close(self) -> None:
        """Snapshot and release every owned partition (the next owner needs no lease expiry)."""
        for p in list(self.runners):
            self._give_back(p)
