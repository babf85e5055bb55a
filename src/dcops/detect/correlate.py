"""Sigma correlation rules (event_count, value_count, temporal, temporal_ordered), streaming.

State per correlation and group-by key is a time window of (time, event id, rule, value); entries
older than the timespan expire, and the number of groups is bounded (least recently used go first).
A correlation fires once its condition holds, then its group starts afresh, so a replay of the same
events yields the same detections.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from dcops.detect.compiler import CompiledRule
from dcops.detect.values import Unsupported

_SUPPORTED = {
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
}
_OPS = {SigmaCorrelationConditionOperator.GTE, SigmaCorrelationConditionOperator.GT}

Entry = tuple[float, str, int, str | None]  # time, event id, rule position, value (value_count)


@dataclass(slots=True)
class CompiledCorrelation:
    """A correlation ready to run over base-rule matches."""

    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    kind: str
    rule_ids: tuple[str, ...]
    group_by: tuple[str, ...]
    aliases: dict[str, dict[str, str]]  # alias -> base rule id -> field
    timespan: float
    threshold: int  # minimum count (gt n is gte n+1)
    fieldref: str | None
    description: str = ""
    path: str = ""

    def field_for(self, name: str, rule_id: str) -> str:
        """The event field a group-by name or alias means for one base rule."""
        m = self.aliases.get(name)
        return m.get(rule_id, name) if m else name


def _rule_id(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.id) if rule.id else (rule.name or rule.title)


def compile_correlation(
    rule: SigmaCorrelationRule, compiled: dict[int, CompiledRule], path: str
) -> CompiledCorrelation:
    """Check the correlation is one the engine runs and resolve its base rules."""
    if rule.type not in _SUPPORTED:
        raise Unsupported(f"correlation type {rule.type.name.lower()} is not supported")
    if not isinstance(rule.condition, SigmaCorrelationCondition):
        raise Unsupported("extended correlation conditions are not supported")
    cond = rule.condition
    temporal = rule.type in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED)
    if not temporal and cond.op not in _OPS:
        raise Unsupported(
            f"condition {cond.op.name.lower()} needs the window to close; only gt/gte stream"
        )
    ids: list[str] = []
    by_ref: dict[str, str] = {}
    for ref in rule.referenced_rules:
        base = ref.rule
        if isinstance(base, SigmaCorrelationRule):
            raise Unsupported("correlations of correlations are not supported")
        if id(base) not in compiled:
            raise Unsupported(f"referenced rule {ref.reference} could not be compiled")
        ids.append(compiled[id(base)].id)
        by_ref[ref.reference] = compiled[id(base)].id
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        mapping: dict[str, str] = {}
        for r, f in alias.mapping.items():
            if r.reference not in by_ref:
                raise Unsupported(f"alias {alias.alias} names {r.reference}, not one of the rules")
            mapping[by_ref[r.reference]] = f
        aliases[alias.alias] = mapping
    threshold = int(cond.count) + (1 if cond.op == SigmaCorrelationConditionOperator.GT else 0)
    fieldref = cond.fieldref if isinstance(cond.fieldref, str) else None
    if rule.type == SigmaCorrelationType.VALUE_COUNT and fieldref is None:
        raise Unsupported("value_count needs one field")
    return CompiledCorrelation(
        id=_rule_id(rule),
        title=rule.title,
        level=str(rule.level.name).lower() if rule.level else "medium",
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags),
        kind=rule.type.name.lower(),
        rule_ids=tuple(ids),
        group_by=tuple(rule.group_by or ()),
        aliases=aliases,
        timespan=float(rule.timespan.seconds),
        threshold=max(threshold, 1),
        fieldref=fieldref,
        description=rule.description or "",
        path=path,
    )


class CorrelationState:
    """Windows of one correlation, keyed by group-by values."""

    def __init__(self, corr: CompiledCorrelation, max_groups: int = 100_000) -> None:
        self.corr = corr
        self.max_groups = max_groups
        self.index = -1  # position in the engine's correlations (set by the engine)
        self.groups: OrderedDict[tuple[str, ...], deque[Entry]] = OrderedDict()
        self._pos = {rid: i for i, rid in enumerate(corr.rule_ids)}

    def key(self, rule_id: str, fields: dict[str, Any]) -> tuple[str, ...]:
        """Group-by values of an event matched by one base rule."""
        out = []
        for g in self.corr.group_by:
            v = fields.get(self.corr.field_for(g, rule_id))
            out.append("" if v is None else str(v))
        return tuple(out)

    def feed(
        self, rule_id: str, ts: float, event_id: str, fields: dict[str, Any]
    ) -> tuple[tuple[str, ...], list[Entry]] | None:
        """Add one base-rule match; return (group, window) when the correlation fires."""
        c = self.corr
        key = self.key(rule_id, fields)
        value: str | None = None
        if c.fieldref is not None:
            raw = fields.get(c.field_for(c.fieldref, rule_id))
            if raw is None:
                return None
            value = str(raw)
        win = self.groups.get(key)
        if win is None:
            win = deque()
            self.groups[key] = win
            if len(self.groups) > self.max_groups:
                self.groups.popitem(last=False)
        else:
            self.groups.move_to_end(key)
        win.append((ts, event_id, self._pos[rule_id], value))
        horizon = ts - c.timespan
        while win and win[0][0] < horizon:
            win.popleft()
        if self._holds(win):
            fired = list(win)
            del self.groups[key]
            return key, fired
        return None

    def _holds(self, win: deque[Entry]) -> bool:
        c = self.corr
        if c.kind == "event_count":
            return len(win) >= c.threshold
        if c.kind == "value_count":
            return len({e[3] for e in win}) >= c.threshold
        need = len(c.rule_ids)
        if c.kind == "temporal":
            return len({e[2] for e in win}) >= need
        step = 0  # temporal_ordered: the rules occur in their listed order
        for e in sorted(win, key=lambda x: x[0]):
            if e[2] == step:
                step += 1
                if step == need:
                    return True
        return False

    def expire(self, now: float) -> None:
        """Drop groups whose newest entry is older than the timespan."""
        horizon = now - self.corr.timespan
        stale = [k for k, w in self.groups.items() if not w or w[-1][0] < horizon]
        for k in stale:
            del self.groups[k]
