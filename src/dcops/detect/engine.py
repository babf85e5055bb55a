"""The detection engine: events in, detections out (rules and correlations), deterministic."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import tzinfo
from itertools import compress, groupby
from operator import attrgetter
from pathlib import Path
from typing import Any

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import Ctx
from dcops.detect.correlate import CompiledCorrelation, CorrelationState, Entry
from dcops.detect.index import RuleBucket
from dcops.detect.loader import RuleSet, load_rules
from dcops.model.event import Detection, Event, LogSource

log = logging.getLogger("dcops.detect")
HOST_FIELDS = ("host.name", "host.hostname", "observer.hostname", "agent.name", "host")
_SWEEP_EVERY = 10_000
_BY_ID_MAX = 4096
_LOGSOURCE = attrgetter("logsource")
_BUCKETS_MAX = 1024  # logsources remembered: an input inventing them cannot grow the engine


def event_host(fields: dict[str, Any]) -> str:
    """The host an event came from, as far as its fields say."""
    for name in HOST_FIELDS:
        v = fields.get(name)
        if v:
            return str(v)
    return ""


class Engine:
    """Runs compiled Sigma rules and correlations over batches of events."""

    def __init__(
        self, ruleset: RuleSet, *, max_groups: int = 100_000, tz: tzinfo | None = None
    ) -> None:
        self.ruleset = ruleset
        self.rules = ruleset.rules
        self._buckets: dict[LogSource, RuleBucket] = {}
        self._by_rules: dict[tuple[int, ...], RuleBucket] = {}  # logsources of the same rules
        # rule positions per (product, service, category) they ask for: a new logsource is
        # matched against these few triples, not against every rule
        self._triples: dict[tuple[str, str, str], list[int]] = {}
        for i, r in enumerate(self.rules):
            self._triples.setdefault((r.product, r.service, r.category), []).append(i)
        self._by_id: dict[int, tuple[LogSource, RuleBucket]] = {}
        self._ctx = Ctx(tz)
        self._corr: dict[str, list[CorrelationState]] = {}
        self.correlations = [CorrelationState(c, max_groups) for c in ruleset.correlations]
        for i, st in enumerate(self.correlations):
            st.index = i
            for rid in set(st.corr.rule_ids):
                self._corr.setdefault(rid, []).append(st)
        self._output = {r.id: bool(r.extra.get("output", True)) for r in self.rules}
        self._seen = 0
        for rej in ruleset.rejected:  # never skipped silently
            log.warning("rule not loaded: %s %s: %s", rej.path, rej.rule, rej.reason)

    @classmethod
    def from_dirs(cls, dirs: Iterable[str | Path], *, max_groups: int = 100_000) -> Engine:
        """Load and compile every rule under the directories."""
        return cls(load_rules(dirs), max_groups=max_groups)

    def bucket(self, ls: LogSource) -> RuleBucket:
        """The indexed rules that apply to one event logsource (built once, then cached).

        Logsources that select the same rules share one bucket; both caches are bounded."""
        b = self._buckets.get(ls)
        if b is None:
            views = ls.views()  # the logsource, its umbrella categories and its `also`
            pos = tuple(sorted(i for (p, s, c), rules in self._triples.items()
                               if any((not p or p == vp) and (not s or s == vs)
                                      and (not c or c == vc) for vp, vs, vc in views)
                               for i in rules))
            b = self._by_rules.get(pos)
            if b is None:
                if len(self._by_rules) >= _BUCKETS_MAX:
                    self._by_rules.clear()
                b = self._by_rules[pos] = RuleBucket([self.rules[i] for i in pos])
            if len(self._buckets) >= _BUCKETS_MAX:
                self._buckets.clear()
            self._buckets[ls] = b
        return b

    def matching_rules(self, event: Event) -> list[CompiledRule]:
        """The rules one event matches (no correlation, no state change)."""
        ctx = self._ctx
        ctx.reset(event.fields, event.raw, event.timestamp)
        return [r for r in self.bucket(event.logsource).candidates([event])[0] if r.match(ctx)]

    def _prefilter(self, events: Sequence[Event]) -> list[Sequence[CompiledRule]]:
        """Per event, the rules its literals allow: each logsource's events searched together.

        Grouped by logsource identity (LogSource's dataclass hash and equality are Python
        code) with C-level calls only: a stable sort of the positions by identity, and the
        answers put back in event order by the inverse permutation."""
        if not events:
            return []
        lss = list(map(_LOGSOURCE, events))
        ids = list(map(id, lss))
        if ids.count(ids[0]) == len(ids):  # one logsource (a file, a collector's batch)
            return self._bucket_of(lss[0]).candidates(events)
        order = sorted(range(len(ids)), key=ids.__getitem__)
        grouped: list[Sequence[CompiledRule]] = []
        for _, run in groupby(order, ids.__getitem__):
            idx = list(run)
            grouped += self._bucket_of(lss[idx[0]]).candidates(list(map(events.__getitem__, idx)))
        back = sorted(range(len(order)), key=order.__getitem__)  # event k's place in `grouped`
        return list(map(grouped.__getitem__, back))

    def process(self, events: Sequence[Event]) -> list[Detection]:
        """Run every rule and correlation over the events, in order; return the detections."""
        out: list[Detection] = []
        ctx = self._ctx
        corr = self._corr
        pre = self._prefilter(events)
        # without correlations, only the events some rule may match are visited
        todo = zip(events, pre, strict=True) if corr else (
            (events[k], pre[k]) for k in compress(range(len(pre)), pre))
        for ev, cands in todo:
            if not cands:
                continue
            ctx.reset(ev.fields, ev.raw, ev.timestamp)
            for r in cands:
                if not r.match(ctx):
                    continue
                if self._output[r.id]:
                    out.append(self._detection(r, ev))
                states = corr.get(r.id)
                if states:
                    ts = ev.timestamp.timestamp()
                    for st in states:
                        fired = st.feed(r.id, ts, ev.id, ev.fields)
                        if fired is not None:
                            out.append(self._correlated(st.corr, fired[0], fired[1], ev))
            if corr:
                self._tick(ev)
        return out

    def process_routed(
        self, items: Sequence[tuple[Event, bool, frozenset[int]]]
    ) -> list[Detection]:
        """`process` for one worker of several: per event, whether its single-event detections
        are this worker's to raise, and which correlations (by index) it feeds here."""
        out: list[Detection] = []
        ctx = self._ctx
        corr = self._corr
        pre = self._prefilter([it[0] for it in items])
        for (ev, single, feeds), cands in zip(items, pre, strict=True):
            ctx.reset(ev.fields, ev.raw, ev.timestamp)
            for r in cands:
                if not r.match(ctx):
                    continue
                if single and self._output[r.id]:
                    out.append(self._detection(r, ev))
                for st in corr.get(r.id, ()):
                    if st.index in feeds:
                        fired = st.feed(r.id, ev.timestamp.timestamp(), ev.id, ev.fields)
                        if fired is not None:
                            out.append(self._correlated(st.corr, fired[0], fired[1], ev))
            if feeds:
                self._tick(ev)
        return out

    def _bucket_of(self, ls: LogSource) -> RuleBucket:
        """The bucket of a logsource, found by identity (once per logsource per batch)."""
        # the entry holds the LogSource, so its id cannot be reused while the entry exists
        got = self._by_id.get(id(ls))
        return got[1] if got is not None and got[0] is ls else self._remember(ls)

    def _remember(self, ls: LogSource) -> RuleBucket:
        """The bucket of a logsource not yet in the identity cache (the hot loops' slow path)."""
        b = self.bucket(ls)
        if len(self._by_id) >= _BY_ID_MAX:  # logsources not interned: start afresh
            self._by_id.clear()
        self._by_id[id(ls)] = (ls, b)
        return b

    def _tick(self, ev: Event) -> None:
        """Count an event that fed correlations; every _SWEEP_EVERY, expire stale windows."""
        self._seen += 1
        if self._seen % _SWEEP_EVERY == 0:
            now = ev.timestamp.timestamp()
            for st in self.correlations:
                st.expire(now)

    @staticmethod
    def _detection(r: CompiledRule, ev: Event) -> Detection:
        host = event_host(ev.fields)
        f = ev.fields
        return Detection(
            rule_id=r.id,
            rule_title=r.title,
            severity=r.level,
            timestamp=ev.timestamp,
            event_ids=(ev.id,),
            key=host,
            host=host,
            tags=r.tags,
            fields={k: f[k] for k in r.fields if k in f},
            description=r.description,
        )

    @staticmethod
    def _correlated(
        c: CompiledCorrelation, key: tuple[str, ...], window: list[Entry], ev: Event
    ) -> Detection:
        host = event_host(ev.fields)
        group = dict(zip(c.group_by, key, strict=True))
        ids = tuple(sorted({e[1] for e in window}))
        fields: dict[str, Any] = {"group": group, "count": len(window)}
        if c.fieldref is not None:
            fields["distinct_values"] = sorted({e[3] for e in window if e[3] is not None})
        return Detection(
            rule_id=c.id,
            rule_title=c.title,
            severity=c.level,
            timestamp=ev.timestamp,
            event_ids=ids,
            key=",".join(f"{k}={v}" for k, v in group.items()) or host,
            host=host,
            tags=c.tags,
            fields=fields,
            description=c.description,
        )
