"""Load Sigma rules with pySigma from directories; compile what can run, report what cannot."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from dcops.detect.compiler import AtomStats, CompiledRule, compile_rule
from dcops.detect.correlate import CompiledCorrelation, compile_correlation
from dcops.detect.values import Unsupported
from dcops.errors import DetectionError

RULE_GLOB = "**/*.yml"  # sample files are *.samples.yaml and never match


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rule (or file) the engine cannot run, and why."""

    path: str
    rule: str
    reason: str


@dataclass(slots=True)
class RuleSet:
    """Compiled rules and correlations plus the load report."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    files: int = 0


def _where(obj: SigmaRule | SigmaCorrelationRule | SigmaError) -> str:
    src = getattr(obj, "source", None)
    return str(getattr(src, "path", "") or "") if src is not None else ""


def rule_files(dirs: Iterable[str | Path]) -> list[Path]:
    """Every rule file under the directories (or the files themselves), sorted."""
    out: list[Path] = []
    for d in dirs:
        p = Path(d)
        if not p.exists():
            raise DetectionError(f"{p}: no such rule file or directory")
        out.extend(sorted(p.glob(RULE_GLOB)) if p.is_dir() else [p])
    return out


def load_rules(dirs: Iterable[str | Path]) -> RuleSet:
    """Parse every rule with pySigma, compile each; collect the rejected with their reasons."""
    files = rule_files(dirs)
    result = RuleSet(files=len(files))
    try:
        coll = SigmaCollection.load_ruleset(
            [str(f) for f in files], collect_errors=True, resolve_references=False
        )
    except (SigmaError, OSError, ValueError) as exc:
        raise DetectionError(f"cannot read rules: {exc}") from exc
    in_rules = {str(e) for r in coll.rules for e in r.errors}
    for err in coll.errors:
        if str(err) in in_rules:
            continue  # reported below with the rule it belongs to
        result.rejected.append(Rejected(_where(err), "", f"parse error: {err}"))
    try:
        coll.resolve_rule_references()
    except SigmaError as exc:
        result.rejected.append(Rejected(_where(exc), "", f"rule reference: {exc}"))
    by_uid: dict[int, CompiledRule] = {}
    seen_ids: dict[str, str] = {}
    stats = _literal_stats(coll.rules)
    for rule in coll.rules:
        if isinstance(rule, SigmaRule):
            cr = _compile_one(rule, result, seen_ids, stats)
            if cr is not None:
                by_uid[id(rule)] = cr
        elif not isinstance(rule, SigmaCorrelationRule) or not rule.errors:
            continue
        else:
            result.rejected.append(Rejected(_where(rule), _label(rule), _errors(rule)))
    for rule in coll.rules:
        if not isinstance(rule, SigmaCorrelationRule) or rule.errors:
            continue
        label = _label(rule)
        try:
            result.correlations.append(compile_correlation(rule, by_uid, _where(rule)))
        except Unsupported as exc:
            result.rejected.append(Rejected(_where(rule), label, str(exc)))
    return result


def _literal_stats(rules: list[SigmaRule | SigmaCorrelationRule]) -> AtomStats:
    """Pass 1: how common each literal is, so rules are gated on their rare ones."""
    stats = AtomStats()
    for rule in rules:
        if isinstance(rule, SigmaRule) and not rule.errors:
            with contextlib.suppress(Unsupported, SigmaError, ValueError, TypeError):
                compile_rule(rule, "", stats)  # errors are reported in pass 2
            stats.end_rule()
    return stats


def _label(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return f"{rule.title} ({rule.id})" if rule.id else rule.title


def _errors(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return "; ".join(str(e) for e in rule.errors)


def _compile_one(
    rule: SigmaRule, result: RuleSet, seen_ids: dict[str, str], stats: AtomStats
) -> CompiledRule | None:
    """Compile one rule into the set, or record why it cannot run."""
    path, label = _where(rule), _label(rule)
    if rule.errors:
        result.rejected.append(Rejected(path, label, _errors(rule)))
        return None
    try:
        cr = compile_rule(rule, path, stats)
    except Unsupported as exc:
        result.rejected.append(Rejected(path, label, str(exc)))
        return None
    except (SigmaError, ValueError, TypeError) as exc:
        result.rejected.append(Rejected(path, label, f"cannot compile: {exc}"))
        return None
    if cr.id in seen_ids:
        result.rejected.append(
            Rejected(path, label, f"duplicate rule id, first loaded from {seen_ids[cr.id]}")
        )
        return None
    seen_ids[cr.id] = path
    cr.extra["output"] = bool(getattr(rule, "_output", True))
    cr.index = len(result.rules)
    result.rules.append(cr)
    return cr
