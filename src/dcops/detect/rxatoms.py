"""Literals a regular expression cannot match without: the prefilter atoms of a `|re` value.

A rule whose only test is a regex would otherwise run on every event of its logsource. From the
regex's parse tree this finds factors: sets of strings at least one of which occurs in any text
the regex finds (`-(W|R)\\s` -> {"-w", "-r"}); the longest factor gates the rule in the index.

Only ASCII characters go into a factor (their lowercase is one ASCII character, so a factor that
occurs in a value occurs lowercased in the lowercased value). Under IGNORECASE, `i` and `s` end a
factor: dotless i (U+0131) and long s (U+017F) match them yet lowercase to themselves. Anything this
module does not understand ends a factor; a parse it cannot walk yields no atoms (the rule then
runs on every event, as before), never a wrong one.
"""

from __future__ import annotations

import importlib
import re
from itertools import product
from typing import Any

# the standard library's regex parser (private modules: typeshed has no stubs for them)
C: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

_MAX_ALTS = 32  # alternatives a factor may hold
_MIN_LEN = 1  # one character still gates: the index tests it with `in`, not as a pattern
_FIXED_MAX = 4  # a fixed repeat ({2}) expanded up to this count
_Factor = frozenset[str]


class _Walk:
    def __init__(self, ignorecase: bool) -> None:
        self.unsafe = frozenset("is") if ignorecase else frozenset()

    def char(self, code: int) -> str | None:
        ch = chr(code)
        if code > 127 or ch.lower() in self.unsafe:
            return None
        return ch.lower()

    def exact(self, seq: Any) -> set[str] | None:
        """Every string the sequence matches, when that is a small finite set; else None."""
        out = {""}
        for op, av in seq:
            got = self.exact_one(op, av)
            if got is None:
                return None
            out = {a + b for a, b in product(out, got)}
            if len(out) > _MAX_ALTS:
                return None
        return out

    def exact_one(self, op: Any, av: Any) -> set[str] | None:  # noqa: PLR0911 - one per opcode
        if op is C.LITERAL:
            ch = self.char(av)
            return None if ch is None else {ch}
        if op is C.IN:
            chars = set()
            for iop, iav in av:
                if iop is not C.LITERAL:
                    return None
                ch = self.char(iav)
                if ch is None:
                    return None
                chars.add(ch)
            return chars if 0 < len(chars) <= _MAX_ALTS else None
        if op is C.SUBPATTERN:
            return self.exact(av[3])
        if op is C.ATOMIC_GROUP:
            return self.exact(av)
        if op is C.BRANCH:
            out: set[str] = set()
            for b in av[1]:
                got = self.exact(b)
                if got is None:
                    return None
                out |= got
            return out if len(out) <= _MAX_ALTS else None
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, body = av
            if lo != hi or lo > _FIXED_MAX:
                return None
            return self.exact(list(body) * lo)
        return None

    def factors(self, seq: Any) -> list[_Factor]:
        """Sets of strings one of which any match of the sequence holds."""
        out: list[_Factor] = []
        cur = {""}

        def flush() -> None:
            nonlocal cur
            if "" not in cur:
                out.append(frozenset(cur))
            cur = {""}

        for op, av in seq:
            got = self.exact_one(op, av)
            if got is not None:
                nxt = {a + b for a, b in product(cur, got)}
                if len(nxt) > _MAX_ALTS:
                    flush()
                    nxt = got
                cur = nxt
                continue
            flush()
            if op is C.SUBPATTERN:
                out += self.factors(av[3])
            elif op is C.ATOMIC_GROUP:
                out += self.factors(av)
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and av[0] >= 1:
                out += self.factors(av[2])
            elif op is C.BRANCH:
                each = [_best(self.factors(b)) for b in av[1]]
                if all(f is not None for f in each):
                    union = frozenset().union(*each)  # type: ignore[arg-type]
                    if len(union) <= _MAX_ALTS:
                        out.append(union)
        flush()
        return out


def _score(f: _Factor) -> tuple[int, int]:
    return (min(len(s) for s in f), -len(f))


def _best(factors: list[_Factor]) -> _Factor | None:
    good = [f for f in factors if f and min(len(s) for s in f) >= _MIN_LEN]
    return max(good, key=_score) if good else None


def _ignorecase(seq: Any) -> bool:
    for op, av in seq:
        if op is C.SUBPATTERN and (av[1] & re.IGNORECASE or _ignorecase(av[3])):
            return True
        if op is C.ATOMIC_GROUP and _ignorecase(av):
            return True
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and _ignorecase(av[2]):
            return True
        if op is C.BRANCH and any(_ignorecase(b) for b in av[1]):
            return True
    return False


def regex_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Lowercase strings one of which every text the regex finds contains; None when unknown."""
    try:
        tree = sre_parse.parse(pattern, flags)
        ic = bool(tree.state.flags & re.IGNORECASE) or _ignorecase(tree.data)
        return _best(_Walk(ic).factors(tree.data))
    except Exception:  # the parser's internals: no atoms is always safe
        return None
