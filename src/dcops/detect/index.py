"""Literal-value index: which rules an event can possibly match, from a few dict lookups.

Each rule carries atoms: literals of which at least one must occur for the rule to match
(exact value, prefix, suffix or substring of a field, lowercased). An event only runs the rules
whose atoms it hits, plus the rules with no usable literal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import Ctx


class _FieldIndex:
    """The atoms of one field."""

    __slots__ = ("base", "contains", "eq", "prefix", "prefix_lens", "suffix", "suffix_lens")

    def __init__(self) -> None:
        self.eq: dict[str, list[int]] = defaultdict(list)
        self.base: dict[str, list[int]] = defaultdict(list)  # last path component of a suffix
        self.prefix: dict[str, list[int]] = defaultdict(list)
        self.suffix: dict[str, list[int]] = defaultdict(list)
        self.contains: dict[str, list[int]] = defaultdict(list)
        self.prefix_lens: tuple[int, ...] = ()
        self.suffix_lens: tuple[int, ...] = ()

    def add(self, kind: str, lit: str, idx: int) -> None:
        if kind == "eq":
            self.eq[lit].append(idx)
        elif kind == "prefix":
            self.prefix[lit].append(idx)
        elif kind == "suffix":
            cut = max(lit.rfind("/"), lit.rfind("\\"))
            if cut >= 0 and cut < len(lit) - 1:
                self.base[lit[cut + 1 :]].append(idx)
            else:
                self.suffix[lit].append(idx)
        else:
            self.contains[lit].append(idx)

    def freeze(self) -> None:
        self.prefix_lens = tuple(sorted({len(k) for k in self.prefix}))
        self.suffix_lens = tuple(sorted({len(k) for k in self.suffix}))
        self.eq = dict(self.eq)
        self.base = dict(self.base)
        self.prefix = dict(self.prefix)
        self.suffix = dict(self.suffix)
        self.contains = dict(self.contains)

    def hits(self, v: str, out: set[int]) -> None:
        got = self.eq.get(v)
        if got:
            out.update(got)
        if self.base:
            cut = max(v.rfind("/"), v.rfind("\\"))
            got = self.base.get(v[cut + 1 :])
            if got:
                out.update(got)
        n = len(v)
        for ln in self.prefix_lens:
            if ln > n:
                break
            got = self.prefix.get(v[:ln])
            if got:
                out.update(got)
        for ln in self.suffix_lens:
            if ln > n:
                break
            got = self.suffix.get(v[n - ln :])
            if got:
                out.update(got)
        for lit, rules in self.contains.items():
            if lit in v:
                out.update(rules)


class RuleBucket:
    """The rules of one event logsource, indexed by their literals."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = list(rules)
        self.always: list[int] = []
        fields: dict[str, _FieldIndex] = {}
        for pos, r in enumerate(self.rules):
            if r.atoms is None:
                self.always.append(pos)
                continue
            for fname, kind, lit in r.atoms:
                fields.setdefault(fname, _FieldIndex()).add(kind, lit, pos)
        for fi in fields.values():
            fi.freeze()
        self.fields = tuple(fields.items())

    def candidates(self, ctx: Ctx) -> list[CompiledRule]:
        """Rules this event may match, in load order."""
        hit: set[int] = set(self.always)
        for fname, fi in self.fields:
            v = ctx.low(fname)
            if v is None:
                continue
            if v.__class__ is str:
                fi.hits(v, hit)  # type: ignore[arg-type,unused-ignore]
            else:
                for x in v:
                    fi.hits(x, hit)
        if not hit:
            return []
        rules = self.rules
        return [rules[i] for i in sorted(hit)]
