"""Hit and miss sample events beside each rule (`<rule>.samples.yaml`), and running them.

Format::

    rule: <id of the rule the samples test>   # default: every rule in the file that emits
    logsource: {product: linux, service: sshd}  # default logsource of the events
    hit:                                        # each case must make the rule fire
      - name: failed password from a commune office
        events:                                 # one or more events, in order
          - {timestamp: "2026-11-20T01:00:00Z", fields: {...}, raw: "..."}
    miss:                                       # each case must not make it fire
      - name: ...
        fields: {...}                           # shorthand: a single event

An event may instead be given in a collector's own shape, e.g. `wazuh: {agent: ..., data: {win:
...}}` (one alerts.json alert): it is then read by that collector (`decoders`, passed in by the
caller, as `dcops detect test` does; detection does not import the collectors), so the samples test
the rule through the real normalisation (field names, backslashes, logsource from the channel).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dcops.detect.engine import Engine
from dcops.detect.loader import RuleSet, load_rules
from dcops.errors import DetectionError
from dcops.model.event import Event, LogSource

SUFFIX = ".samples.yaml"
_BASE_TIME = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 10:00 in Biên Hòa: working hours

# A collector's reading of one sample document: (document, its time, where) -> the Event.
Decoder = Callable[[dict[str, Any], datetime, str], Event]
Decoders = Mapping[str, Decoder]


@dataclass(slots=True)
class CaseResult:
    """One sample case run against its rule."""

    rule_file: str
    name: str
    expect: str  # hit | miss
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class SampleReport:
    """All sample cases of a rule directory."""

    results: list[CaseResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # rule files without samples

    @property
    def ok(self) -> bool:
        """True when every case passed and every rule has samples."""
        return not self.missing and all(r.ok for r in self.results)


def samples_path(rule_file: Path) -> Path:
    """Where a rule's samples live."""
    return rule_file.with_name(rule_file.name.removesuffix(".yml") + SUFFIX)


def _logsource(d: Any, where: str) -> LogSource:
    if d is None:
        return LogSource()
    if not isinstance(d, dict):
        raise DetectionError(f"{where}: logsource must be a mapping")
    return LogSource(
        str(d.get("product", "")), str(d.get("service", "")), str(d.get("category", ""))
    )


def _decoded(e: dict[str, Any], ts: datetime, decoders: Decoders, where: str) -> Event | None:
    """The event of a sample given in a collector's shape (`wazuh: {...}`), None for `fields`."""
    shapes = [k for k in e if k not in ("name", "timestamp", "fields", "raw", "logsource")]
    if not shapes:
        return None
    if len(shapes) > 1 or "fields" in e:
        raise DetectionError(
            f"{where}: give the event as 'fields' or as one collector shape, got {sorted(e)}"
        )
    shape = shapes[0]
    if shape not in decoders:
        known = ", ".join(sorted(decoders)) or "none passed in"
        raise DetectionError(f"{where}: unknown event shape {shape!r} (known: {known})")
    doc = e[shape]
    if not isinstance(doc, dict):
        raise DetectionError(f"{where}: {shape!r} must be a mapping (one {shape} document)")
    return decoders[shape](doc, ts, where)


def _events(
    case: dict[str, Any], default_ls: LogSource, where: str, decoders: Decoders
) -> list[Event]:
    raw_events = case.get("events")
    if raw_events is None:
        raw_events = [case]
    if not isinstance(raw_events, list) or not raw_events:
        raise DetectionError(f"{where}: 'events' must be a non-empty list")
    out = []
    for i, e in enumerate(raw_events):
        if not isinstance(e, dict):
            raise DetectionError(f"{where}: event {i} must be a mapping")
        ts = e.get("timestamp")
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if not isinstance(ts, datetime):
            ts = _BASE_TIME + timedelta(seconds=i)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        decoded = _decoded(e, ts, decoders, f"{where} event {i}")
        if decoded is not None:
            out.append(decoded)
            continue
        fields = e.get("fields") or {}
        if not isinstance(fields, dict):
            raise DetectionError(f"{where}: event {i} 'fields' must be a mapping")
        ls = _logsource(e["logsource"], where) if "logsource" in e else default_ls
        out.append(
            Event(
                id=Event.make_id(where, i),
                timestamp=ts,
                source="sample",
                logsource=ls,
                fields=dict(fields),
                raw=str(e.get("raw", "")),
            )
        )
    return out


def _fires(ruleset: RuleSet, targets: set[str], events: list[Event]) -> list[str]:
    """Titles of target rules that match (plain rules) or fire (correlations) on the events."""
    engine = Engine(ruleset)
    hit = {d.rule_title for d in engine.process(events) if d.rule_id in targets}
    fresh = Engine(ruleset)
    for ev in events:
        hit |= {r.title for r in fresh.matching_rules(ev) if r.id in targets}
    return sorted(hit)


def run_rule_samples(
    rule_file: Path, ruleset: RuleSet | None = None, decoders: Decoders | None = None
) -> list[CaseResult]:
    """Run one rule file's hit and miss cases, each on a fresh engine over the whole rule set.

    `decoders` read events given in a collector's shape (see the module docstring)."""
    spath = samples_path(rule_file)
    try:
        doc = yaml.safe_load(spath.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DetectionError(f"{spath}: cannot read samples: {exc}") from exc
    if not isinstance(doc, dict):
        raise DetectionError(f"{spath}: expected a mapping with 'hit' and 'miss'")
    ruleset = ruleset or load_rules([rule_file])
    me = rule_file.resolve()
    rejected = [r for r in ruleset.rejected if r.path and Path(r.path).resolve() == me]
    if rejected:
        why = "; ".join(r.reason for r in rejected)
        return [CaseResult(str(rule_file), "load", "hit", False, f"rule rejected: {why}")]
    mine = [r.id for r in ruleset.rules if Path(r.path).resolve() == me]
    mine += [c.id for c in ruleset.correlations if Path(c.path).resolve() == me]
    targets = {str(doc["rule"])} if doc.get("rule") else set(mine)
    if not targets:
        return [CaseResult(str(rule_file), "load", "hit", False, "no rule loaded from the file")]
    default_ls = _logsource(doc.get("logsource"), str(spath))
    results: list[CaseResult] = []
    for expect in ("hit", "miss"):
        cases = doc.get(expect) or []
        if not cases:
            results.append(CaseResult(str(rule_file), f"(no {expect} case)", expect, False))
        for n, case in enumerate(cases):
            name = str(case.get("name", f"{expect} {n + 1}"))
            events = _events(case, default_ls, f"{spath}:{expect}[{n}]", decoders or {})
            fired = _fires(ruleset, targets, events)
            ok = bool(fired) if expect == "hit" else not fired
            results.append(CaseResult(str(rule_file), name, expect, ok, ", ".join(fired)))
    return results


def run_samples(dirs: list[Path], decoders: Decoders | None = None) -> SampleReport:
    """Run the samples of every rule file under the directories (rules loaded together)."""
    report = SampleReport()
    ruleset = load_rules(dirs)
    for d in dirs:
        files = sorted(d.glob("**/*.yml")) if d.is_dir() else [d]
        for f in files:
            if not samples_path(f).exists():
                report.missing.append(str(f))
                continue
            report.results.extend(run_rule_samples(f, ruleset, decoders))
    return report
