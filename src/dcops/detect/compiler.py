"""Compile a pySigma rule's condition tree into one predicate plus its literal prefilter."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from dcops.detect.context import Ctx
from dcops.detect.values import Atom, Leaf, Matcher, Unsupported, compile_value, merge_or

_COST = {"eq": 1, "prefix": 2, "suffix": 2, "contains": 4}


@dataclass(slots=True)
class CompiledRule:
    """A rule ready to run: identity, logsource, predicate and the literals that gate it."""

    id: str
    name: str
    title: str
    level: str
    tags: tuple[str, ...]
    product: str
    service: str
    category: str
    match: Matcher
    atoms: tuple[Atom, ...] | None
    fields: tuple[str, ...]
    also: tuple[Atom, ...] | None = None  # a second literal gate (see Leaf.also)
    description: str = ""
    path: str = ""
    index: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def accepts(self, product: str, service: str, category: str) -> bool:
        """True when an event of that logsource can match this rule."""
        return (
            (not self.product or self.product == product)
            and (not self.service or self.service == service)
            and (not self.category or self.category == category)
        )


class AtomStats:
    """How many rules use each literal: a literal many rules share (type=SYSCALL) is common."""

    def __init__(self) -> None:
        self.pop: Counter[Atom] = Counter()
        self._rule: set[Atom] = set()

    def note(self, atoms: tuple[Atom, ...] | None) -> None:
        """Record the literals of one leaf of the rule being compiled."""
        if atoms:
            self._rule.update(atoms)

    def end_rule(self) -> None:
        """Count the current rule's literals once each."""
        self.pop.update(self._rule)
        self._rule = set()

    def cost(self, atoms: tuple[Atom, ...]) -> float:
        """Expected price of gating on these literals: short, shared or substring ones cost more."""
        total = 0.0
        for a in atoms:
            n = len(a[2])
            weak = 8 if n < 3 else 3 if n < 5 else 1
            common = 1 + self.pop[a]  # a value many rules test for is likely a frequent one
            total += _COST[a[1]] * weak * common * common
        return total


_NO_STATS = AtomStats()


def _and(fns: list[Matcher]) -> Matcher:
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return lambda c: a(c) and b(c)
    t = tuple(fns)

    def all_of(c: Ctx) -> bool:
        for f in t:  # noqa: SIM110 - a loop beats all(genexpr) on the hot path
            if not f(c):
                return False
        return True

    return all_of


def _or(fns: list[Matcher]) -> Matcher:
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return lambda c: a(c) or b(c)
    t = tuple(fns)

    def any_of(c: Ctx) -> bool:
        for f in t:  # noqa: SIM110 - a loop beats any(genexpr) on the hot path
            if f(c):
                return True
        return False

    return any_of


def compile_condition(node: Any, used: set[str], stats: AtomStats = _NO_STATS) -> Leaf:
    """Compile one node of pySigma's post-processed condition tree."""
    if isinstance(node, ConditionAND):
        kids = [compile_condition(a, used, stats) for a in node.args if a is not None]
        # every literal set a child needs, the AND needs: gate on the two cheapest
        gates = sorted({g for k in kids for g in (k.atoms, k.also) if g is not None},
                       key=lambda g: (stats.cost(g), g))
        # evaluate prefilterable (cheap, selective) children first
        kids.sort(key=lambda k: 0 if k.atoms is not None else 1)
        return Leaf(_and([k.match for k in kids]), gates[0] if gates else None,
                    gates[1] if len(gates) > 1 else None)
    if isinstance(node, ConditionOR):
        kids = [compile_condition(a, used, stats) for a in node.args if a is not None]
        atoms: tuple[Atom, ...] | None = ()
        for k in kids:
            atoms = None if k.atoms is None or atoms is None else atoms + k.atoms
        return Leaf(_or(merge_or(kids)), atoms)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0], used, stats)
        f = inner.match
        return Leaf(lambda c: not f(c), None)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        used.add(node.field)
        leaf = compile_value(node.field, node.value)
        stats.note(leaf.atoms)
        return leaf
    if isinstance(node, ConditionValueExpression):
        leaf = compile_value(None, node.value)
        stats.note(leaf.atoms)
        return leaf
    if node is None:
        raise Unsupported("the condition is empty after processing")
    raise Unsupported(f"condition element {type(node).__name__} is not supported")


def compile_rule(rule: SigmaRule, path: str = "", stats: AtomStats = _NO_STATS) -> CompiledRule:
    """Compile a parsed Sigma rule; raise Unsupported with the reason if it cannot run."""
    try:
        trees = [c.parsed for c in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise Unsupported(f"condition: {exc}") from exc
    used: set[str] = set()
    leaves = [compile_condition(t, used, stats) for t in trees]
    if len(leaves) == 1:
        top = leaves[0]
    else:  # several conditions in a list are OR-ed
        atoms: tuple[Atom, ...] | None = ()
        for lf in leaves:
            atoms = None if lf.atoms is None or atoms is None else atoms + lf.atoms
        top = Leaf(_or(merge_or(leaves)), atoms)
    ls = rule.logsource
    return CompiledRule(
        id=str(rule.id) if rule.id else (rule.name or rule.title),
        name=rule.name or "",
        title=rule.title,
        level=str(rule.level.name).lower() if rule.level else "medium",
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags),
        product=(ls.product or "").lower(),
        service=(ls.service or "").lower(),
        category=(ls.category or "").lower(),
        match=top.match,
        atoms=top.atoms,
        also=top.also,
        # what the detection carries: the fields its condition reads, and those the rule names
        # for the analyst (Sigma's `fields`, e.g. the account a useradd created)
        fields=tuple(sorted(used | {str(f) for f in rule.fields or ()})),
        description=rule.description or "",
        path=path,
    )


def always(_: Ctx) -> bool:
    """A predicate that is always true (used in tests)."""
    return True
