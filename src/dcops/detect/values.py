"""Compile one Sigma value (after pySigma applied the modifiers) into a predicate over a field.

Strings match case-insensitively unless the rule says `cased`; wildcards `*` and `?` span any
characters; regular expressions search (unanchored) with the flags the rule gives.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

from dcops.detect.context import KEYWORD_FIELD, Ctx, FieldValue
from dcops.detect.linear import Regex, glob
from dcops.detect.rxatoms import regex_literals

Matcher = Callable[[Ctx], bool]
Atom = tuple[str, str, str]  # (field, kind: eq|prefix|suffix|contains, lowercase literal)


class Unsupported(Exception):  # noqa: N818 - a reason, raised while compiling, caught by the loader
    """The engine cannot run this part of a rule; the message says why."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A compiled value test: the predicate and, when known, literals one of which must occur."""

    match: Matcher
    atoms: tuple[Atom, ...] | None  # None: no literal is necessary (cannot prefilter)
    # a second set of literals one of which must occur too (another part of an AND): an event
    # runs the rule only when both sets hit
    also: tuple[Atom, ...] | None = None
    # (field, kind, lowercase literal) of a case-insensitive eq/prefix/suffix/contains test:
    # an OR of several on one field is then run as one test (`any_literal`)
    simple: Atom | None = None


def _over(v: FieldValue, pred: Callable[[str], bool]) -> bool:
    if v is None:
        return False
    if v.__class__ is str:
        return pred(v)  # type: ignore[arg-type,unused-ignore]
    return any(pred(x) for x in v)


def _string_shape(s: SigmaString) -> tuple[str, list[str | SpecialChars]]:
    """Classify a Sigma string: eq, prefix, suffix, contains, any or pattern."""
    parts: list[str | SpecialChars] = []
    for p in s.s:
        if isinstance(p, Placeholder):
            raise Unsupported(f"placeholder %{p.name}% needs a processing pipeline")
        parts.append(p)
    multi = SpecialChars.WILDCARD_MULTI
    if all(isinstance(p, str) for p in parts):
        return "eq", parts
    if len(parts) == 1 and parts[0] is multi:
        return "any", parts
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is multi:
        return "prefix", parts
    if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        return "suffix", parts
    if len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
        return "contains", parts
    return "pattern", parts


def _pattern_glob(parts: list[str | SpecialChars], cased: bool) -> Callable[[str], bool]:
    """A wildcard value as a fullmatch in linear time (`linear.glob`), `re`'s case folding."""
    pieces: list[str | None] = []
    for p in parts:
        if p is SpecialChars.WILDCARD_MULTI:
            pieces.append(None)
        elif p is SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        else:
            pieces.append(re.escape(str(p)))
    return glob(pieces, 0 if cased else re.IGNORECASE)


def compile_string(field: str, s: SigmaString, *, keyword: bool = False) -> Leaf:
    """A Sigma string (with wildcards) against a field; keywords search anywhere in the text."""
    cased = isinstance(s, SigmaCasedString)
    kind, parts = _string_shape(s)
    if keyword and kind != "any":
        multi = SpecialChars.WILDCARD_MULTI
        head: list[str | SpecialChars] = [] if parts and parts[0] is multi else [multi]
        tail: list[str | SpecialChars] = [] if parts and parts[-1] is multi else [multi]
        parts = head + parts + tail
        kind = "contains" if len(parts) == 3 and isinstance(parts[1], str) else "pattern"

    def get(c: Ctx) -> FieldValue:
        return c.text(field) if cased else c.low(field)

    lit = ""
    if kind in ("eq", "prefix"):
        lit = "".join(str(p) for p in parts[:1])
    elif kind in ("suffix", "contains"):
        lit = str(parts[1])
    if not cased:
        lit = lit.lower()
    pred: Callable[[str], bool]
    if kind == "eq":
        pred = lit.__eq__
    elif kind == "prefix":
        pred = lambda x: x.startswith(lit)  # noqa: E731
    elif kind == "suffix":
        pred = lambda x: x.endswith(lit)  # noqa: E731
    elif kind == "contains":
        pred = lambda x: lit in x  # noqa: E731
    elif kind == "any":
        pred = lambda x: True  # noqa: E731
    else:
        pred = _pattern_glob(parts, cased)
    fast = _fast(field, kind, lit, cased)
    match = fast or _generic(get, pred)
    atoms: tuple[Atom, ...] | None = None
    if kind in ("eq", "prefix", "suffix", "contains") and lit:
        atoms = ((field, kind, lit.lower()),)
    elif kind == "pattern":
        atoms = _pattern_atoms(field, parts)
    return Leaf(match, atoms, simple=(field, kind, lit) if fast is not None else None)


def _generic(get: Callable[[Ctx], FieldValue], pred: Callable[[str], bool]) -> Matcher:
    def match(c: Ctx) -> bool:
        return _over(get(c), pred)

    return match


def _fast(field: str, kind: str, lit: str, cased: bool) -> Matcher | None:
    """The matcher of a common case-insensitive shape (the hot path), None for the others."""
    if cased or kind not in ("eq", "prefix", "suffix", "contains"):
        return None
    return any_literal(field, kind, (lit,))


def any_literal(field: str, kind: str, lits: Sequence[str]) -> Matcher:
    """One case-insensitive test of a field against several literals of one kind (an OR of
    `_fast` tests): a set probe, or one C-level startswith/endswith over a tuple."""
    t = tuple(dict.fromkeys(lits))
    if kind == "eq":
        s = frozenset(t)

        def any_eq(c: Ctx) -> bool:
            v = c.low(field)
            if v.__class__ is str:
                return v in s
            return v is not None and not s.isdisjoint(v)

        return any_eq
    if kind == "suffix":

        def any_suffix(c: Ctx) -> bool:
            v = c.low(field)
            if v.__class__ is str:
                return v.endswith(t)
            return v is not None and any(x.endswith(t) for x in v)

        return any_suffix
    if kind == "prefix":

        def any_prefix(c: Ctx) -> bool:
            v = c.low(field)
            if v.__class__ is str:
                return v.startswith(t)
            return v is not None and any(x.startswith(t) for x in v)

        return any_prefix
    if kind != "contains":
        raise ValueError(f"any_literal: kind {kind!r}")
    if len(t) == 1:
        lit = t[0]

        def m_contains(c: Ctx) -> bool:
            v = c.low(field)
            if v.__class__ is str:
                return lit in v
            return v is not None and any(lit in x for x in v)

        return m_contains

    def any_contains(c: Ctx) -> bool:
        v = c.low(field)
        if v.__class__ is str:
            for lit in t:  # noqa: SIM110 - a loop beats any(genexpr) on the hot path
                if lit in v:
                    return True
            return False
        return v is not None and any(lit in x for x in v for lit in t)

    return any_contains


def merge_or(leaves: Sequence[Leaf]) -> list[Matcher]:
    """The matchers of an OR, the simple tests of one field and kind merged into one
    `any_literal` (placed where the first of them was; the others keep their order)."""
    groups: dict[tuple[str, str], list[str]] = {}
    slots: list[Matcher | tuple[str, str]] = []
    for leaf in leaves:
        if leaf.simple is None:
            slots.append(leaf.match)
            continue
        f, kind, lit = leaf.simple
        if (f, kind) not in groups:
            groups[(f, kind)] = []
            slots.append((f, kind))
        groups[(f, kind)].append(lit)
    return [any_literal(*s, groups[s]) if isinstance(s, tuple) else s for s in slots]


def _pattern_atoms(field: str, parts: list[str | SpecialChars]) -> tuple[Atom, ...] | None:
    """A literal any match of a wildcard pattern must contain: the longest literal run."""
    if isinstance(parts[0], str) and parts[0]:
        return ((field, "prefix", parts[0].lower()),)
    if isinstance(parts[-1], str) and parts[-1]:
        return ((field, "suffix", parts[-1].lower()),)
    runs = [p for p in parts if isinstance(p, str) and p]
    if not runs:
        return None
    return ((field, "contains", max(runs, key=len).lower()),)


def _compile_regex(field: str, r: SigmaRegularExpression) -> Leaf:
    flags = 0
    for f in r.flags:
        flags |= SigmaRegularExpression.sigma_to_python_flags[f]
    rx = Regex(str(r.regexp), flags)  # RE2 where exact: the value is attacker-controlled
    search = rx.search

    def match(c: Ctx) -> bool:
        return _over(c.text(field), search)

    lits = regex_literals(rx.py.pattern, rx.py.flags)  # literals it cannot match without, if any
    atoms = None if lits is None else tuple((field, "contains", s) for s in sorted(lits))
    return Leaf(match, atoms)


@lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _compile_cidr(field: str, cidr: SigmaCIDRExpression) -> Leaf:
    net = cidr.network

    def pred(x: str) -> bool:
        ip = _ip(x)
        return ip is not None and ip.version == net.version and ip in net

    def match(c: Ctx) -> bool:
        return _over(c.text(field), pred)

    atoms: tuple[Atom, ...] | None = None
    if net.version == 4:
        prefixes = []
        for w in cidr.expand():
            head = w.split("*", 1)[0]
            if not head:
                return Leaf(match, None)
            prefixes.append((field, "prefix", head.lower()))
        atoms = tuple(prefixes)
    return Leaf(match, atoms)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


_OPS: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _values(c: Ctx, field: str) -> list[Any]:
    v = c.value(field)
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]


_PARTS: dict[TimestampPart, Callable[[datetime], int]] = {
    TimestampPart.MINUTE: lambda d: d.minute,
    TimestampPart.HOUR: lambda d: d.hour,
    TimestampPart.DAY: lambda d: d.day,
    TimestampPart.WEEK: lambda d: int(d.strftime("%W")),
    TimestampPart.MONTH: lambda d: d.month,
    TimestampPart.YEAR: lambda d: d.year,
}


def _compile_time_part(
    field: str, part: SigmaTimestampPart, op: Callable[[float, float], bool]
) -> Leaf:
    get = _PARTS[part.timestamp_part]
    ref = float(part.number)

    def match(c: Ctx) -> bool:
        d = c.time(field)
        return d is not None and op(float(get(d)), ref)

    return Leaf(match, None)


def _compile_compare(field: str, e: SigmaCompareExpression) -> Leaf:
    ref = float(e.number.number)
    op = _OPS[e.op]
    if isinstance(e.number, SigmaTimestampPart):
        return _compile_time_part(field, e.number, op)

    def match(c: Ctx) -> bool:
        for v in _values(c, field):
            n = _number(v)
            if n is not None and op(n, ref):
                return True
        return False

    return Leaf(match, None)


def _compile_number(field: str, num: SigmaNumber) -> Leaf:
    if isinstance(num, SigmaTimestampPart):
        return _compile_time_part(field, num, lambda a, b: a == b)
    ref = num.number
    text = str(ref).lower()

    def match(c: Ctx) -> bool:
        for v in _values(c, field):
            if isinstance(v, bool):
                continue
            if isinstance(v, int | float):
                if v == ref:
                    return True
            elif to_lower(v) == text:
                return True
        return False

    return Leaf(match, ((field, "eq", text),))


def to_lower(v: Any) -> str:
    """Lowercase text of a scalar field value."""
    return (v if isinstance(v, str) else str(v)).lower()


def _compile_fieldref(field: str, ref: SigmaFieldReference) -> Leaf:
    other = ref.field

    def match(c: Ctx) -> bool:
        a, b = c.low(field), c.low(other)
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        if ref.starts_with and ref.ends_with:
            return b in a
        if ref.starts_with:
            return a.startswith(b)
        if ref.ends_with:
            return a.endswith(b)
        return a == b

    return Leaf(match, None)


def compile_value(  # noqa: PLR0911, PLR0912 - one branch per Sigma value type
    field: str | None, value: SigmaType
) -> Leaf:
    """Compile `field = value` (field None: a keyword searched in the message)."""
    if field is None:
        if isinstance(value, SigmaString):
            return compile_string(KEYWORD_FIELD, value, keyword=True)
        if isinstance(value, SigmaNumber):
            return compile_string(KEYWORD_FIELD, SigmaString(str(value.number)), keyword=True)
        if isinstance(value, SigmaRegularExpression):
            return _compile_regex(KEYWORD_FIELD, value)
        if isinstance(value, SigmaExpansion):
            return any_of([compile_value(None, v) for v in value.values])
        raise Unsupported(f"keyword value of type {type(value).__name__} is not supported")
    if isinstance(value, SigmaString):
        return compile_string(field, value)
    if isinstance(value, SigmaRegularExpression):
        return _compile_regex(field, value)
    if isinstance(value, SigmaCIDRExpression):
        return _compile_cidr(field, value)
    if isinstance(value, SigmaCompareExpression):
        return _compile_compare(field, value)
    if isinstance(value, SigmaNumber):
        return _compile_number(field, value)
    if isinstance(value, SigmaFieldReference):
        return _compile_fieldref(field, value)
    if isinstance(value, SigmaExpansion):
        return any_of([compile_value(field, v) for v in value.values])
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return Leaf(lambda c: (c.value(field) is not None) is want, None)
    if isinstance(value, SigmaNull):
        return Leaf(lambda c: c.value(field) is None, None)
    if isinstance(value, SigmaBool):
        want_b = bool(value.boolean)
        text = "true" if want_b else "false"

        def match_bool(c: Ctx) -> bool:
            for v in _values(c, field):
                if isinstance(v, bool | int) and bool(v) is want_b and v in (0, 1):
                    return True
                if isinstance(v, str) and v.strip().lower() in (text, str(int(want_b))):
                    return True
            return False

        return Leaf(match_bool, None)
    raise Unsupported(f"value type {type(value).__name__} on field {field} is not supported")


def any_of(leaves: list[Leaf]) -> Leaf:
    """OR of leaves (expansions such as windash and base64offset)."""
    fns = tuple(merge_or(leaves))
    atoms: tuple[Atom, ...] | None = ()
    for leaf in leaves:
        atoms = None if leaf.atoms is None or atoms is None else atoms + leaf.atoms

    def match(c: Ctx) -> bool:
        for f in fns:  # noqa: SIM110 - a loop beats any(genexpr) on the hot path
            if f(c):
                return True
        return False

    return Leaf(match, atoms)
