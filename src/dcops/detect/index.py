"""Literal-value index: which rules an event can possibly match, without running them.

Each rule carries atoms: literals of which at least one must occur for the rule to match
(exact value, prefix, suffix or substring of a field, lowercased). An event only runs the rules
whose atoms it hits, plus the rules with no usable literal.

Per field, every literal is one pattern of an Aho-Corasick automaton (`ahocorasick-rs`, Rust:
one pass over the value whatever the literals, no backtracking). A value is searched framed as
START + value + END, so an exact value is the pattern START+lit+END, a prefix START+lit, a suffix
lit+END and a substring lit itself: one search answers every kind of atom.

Fields whose values repeat (Image, User, auditd `type`) remember value -> rules. Fields whose
values rarely repeat (message, CommandLine) are searched a batch at a time: the batch's values
framed and joined into one text, one search, each match mapped back to its value by position (a
literal holds neither frame character, so a match never spans two values; an exact, prefix or
suffix pattern starts or ends on its own value's frame).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import KEYWORD_FIELD, to_text
from dcops.model.event import Event

_MEMO_PROBE = 4096  # lookups after which a field whose values rarely repeat stops memoising
_CACHE_MAX = 50_000  # memoised values per field before the memo starts afresh
_SHORT = 2  # one-character substrings would hit at almost every position: tested alone
START, END = "\x00", "\x01"  # frame of a value in the searched text
_FRAME = END + START
_DFA_MAX = 300  # patterns up to which an automaton is a DFA: faster, but 2,000 cost 32 MB more
# over 13 Windows logsources, 300 cost 3 MB more than the NFA
_SCAN_MAX = 1 << 20  # characters searched at once: a batch of 64 KiB messages is split
_NONE: tuple[CompiledRule, ...] = ()


def _framed(kind: str, lit: str) -> str:
    if kind == "eq":
        return START + lit + END
    if kind == "prefix":
        return START + lit
    if kind == "suffix":
        return lit + END
    return lit


class _FieldIndex:
    """The atoms of one field: one automaton, and the rules behind each of its patterns."""

    __slots__ = ("ac", "cache", "ids", "lookups", "memo", "misses", "patterns", "searched",
                 "short")

    def __init__(self) -> None:
        self.patterns: dict[str, list[int]] = defaultdict(list)  # framed literal -> rules
        self.short: tuple[tuple[str, tuple[int, ...]], ...] = ()
        self.ac: AhoCorasick | None = None
        self.searched: tuple[str, ...] = ()  # the automaton's patterns, in its order
        self.ids: tuple[tuple[int, ...], ...] = ()  # pattern number -> rules
        self.cache: dict[str, tuple[int, ...]] = {}  # raw value -> rules (values repeat a lot)
        self.memo = True  # turned off for fields whose values rarely repeat (messages)
        self.lookups = 0
        self.misses = 0

    def add(self, kind: str, lit: str, idx: int) -> None:
        """One atom of rule `idx` (kind: eq, prefix, suffix or contains; lowercase literal)."""
        self.patterns[_framed(kind, lit)].append(idx)

    def freeze(self) -> None:
        """Build the automaton once every atom is in."""
        pats = {p: tuple(sorted(set(v))) for p, v in self.patterns.items()}
        # a substring of one or two characters (':' from a wildcard pattern) occurs in most
        # values: as a pattern it would report a match at nearly every position
        short = {p for p in pats if len(p) < _SHORT and START not in p and END not in p}
        self.short = tuple((p, pats[p]) for p in short)
        long_ = {p: v for p, v in pats.items() if p not in short}
        self.ids = tuple(long_.values())
        self.searched = tuple(long_)
        self._build()

    def _build(self) -> None:
        self.ac = None
        if self.searched:
            n = len(self.searched)
            impl = Implementation.DFA if n <= _DFA_MAX else Implementation.ContiguousNFA
            self.ac = AhoCorasick(list(self.searched), implementation=impl)

    def __getstate__(self) -> dict[str, Any]:
        """Copied or pickled (a worker's fresh engine) without the automaton, a Rust object
        that is neither: `__setstate__` builds it again from the patterns."""
        return {k: getattr(self, k) for k in self.__slots__ if k != "ac"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._build()

    def lookup(self, raw: str) -> tuple[int, ...]:
        """The rules a raw string value can satisfy, memoised (Image, User, type repeat)."""
        got = self.cache.get(raw)
        if got is None:
            self.misses += 1
            acc: set[int] = set()
            self.hits(raw.lower(), acc)
            got = tuple(acc)
            if len(self.cache) >= _CACHE_MAX:
                self.cache.clear()
            self.cache[raw] = got
        self.lookups += 1
        if self.lookups == _MEMO_PROBE and self.misses > 0.8 * _MEMO_PROBE:
            self.memo = False
            self.cache.clear()
        return got

    def hits(self, v: str, out: set[int]) -> None:
        """Add the rules one of whose literals the (lowercase) value holds."""
        ac = self.ac
        if ac is not None:
            ids = self.ids
            for m in ac.find_matches_as_indexes(START + v + END, overlapping=True):
                out.update(ids[m[0]])
        for lit, rules in self.short:
            if lit in v:
                out.update(rules)

    def scan(self, vals: list[str], owners: list[int], hits: list[set[int] | None]) -> None:
        """`hits` for many raw values in one search: value k's rules go to hits[owners[k]]."""
        if len(vals) > 1 and sum(map(len, vals)) > _SCAN_MAX:  # halves: the text stays small
            mid = len(vals) // 2
            self.scan(vals[:mid], owners[:mid], hits)
            self.scan(vals[mid:], owners[mid:], hits)
        else:
            self._scan(vals, owners, hits)

    def _scan(self, vals: list[str], owners: list[int], hits: list[set[int] | None]) -> None:
        text = START + _FRAME.join(vals) + END
        if text.isascii():
            low = text.lower()
        else:  # lowercasing may change a length (İ -> i̇): lower each value, then frame
            vals = [v.lower() for v in vals]
            low = START + _FRAME.join(vals) + END
        # where value k's frame starts: its START sits at starts[k]
        starts = list(accumulate(map((2).__add__, map(len, vals)), initial=0))
        ac = self.ac
        if ac is not None:
            ids = self.ids
            for p, s, _ in ac.find_matches_as_indexes(low, overlapping=True):
                k = owners[bisect_right(starts, s) - 1]
                h = hits[k]
                if h is None:
                    hits[k] = set(ids[p])
                else:
                    h.update(ids[p])
        for lit, rules in self.short:
            if lit in low:  # rare: find the values that hold it
                for j in range(len(vals)):
                    if lit in low[starts[j] + 1 : starts[j + 1] - 1]:
                        k = owners[j]
                        h = hits[k]
                        if h is None:
                            hits[k] = set(rules)
                        else:
                            h.update(rules)


def _low_other(v: Any) -> str | tuple[str, ...]:
    """A non-string field value as the matchers see it, lowercased (Ctx.low's rules)."""
    if isinstance(v, list | tuple):
        return tuple(to_text(x).lower() for x in v if x is not None)
    return to_text(v).lower()


class RuleBucket:
    """The rules of one event logsource, indexed by their literals."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = list(rules)
        # a hit is 2 * rule position + gate: gate 0 is the rule's `atoms`, gate 1 its `also`
        self.always: list[int] = []
        self.two = [r.atoms is not None and r.also is not None for r in self.rules]
        fields: dict[str, _FieldIndex] = {}
        for pos, r in enumerate(self.rules):
            if r.atoms is None:
                self.always.append(2 * pos)
                continue
            for gate, atoms in enumerate((r.atoms, r.also)):
                for fname, kind, lit in atoms or ():
                    fields.setdefault(fname, _FieldIndex()).add(kind, lit, 2 * pos + gate)
        for fi in fields.values():
            fi.freeze()
        self.fields = tuple(fields.items())

    def candidates(  # noqa: PLR0912 - the hot path, inlined
        self, events: Sequence[Event]
    ) -> list[Sequence[CompiledRule]]:
        """Per event, the rules it may match, in load order."""
        n = len(events)
        always = self.always
        # rule numbers per event; None until something hits (most events hit nothing)
        hits: list[set[int] | None] = [set(always) for _ in range(n)] if always else [None] * n
        fl = [ev.fields for ev in events]
        for fname, fi in self.fields:
            if fname == KEYWORD_FIELD:  # what Ctx.value(KEYWORD_FIELD) reads: message, else raw
                col = [f.get("message") for f in fl]
                if None in col:
                    for k, v in enumerate(col):
                        if v is None:
                            col[k] = events[k].raw or None
            else:
                col = [f.get(fname) for f in fl]
            if fi.memo:
                cache = fi.cache
                for k, v in enumerate(col):
                    if v is None:
                        continue
                    if v.__class__ is str:
                        got = cache.get(v)  # inlined fast path of fi.lookup
                        if got is None:
                            got = fi.lookup(v)
                        if got:
                            h = hits[k]
                            if h is None:
                                hits[k] = set(got)
                            else:
                                h.update(got)
                    else:
                        self._other(v, fi, hits, k)
                continue
            vals: list[str] = []
            owners: list[int] = []
            for k, v in enumerate(col):
                if v is None:
                    continue
                if v.__class__ is str:
                    vals.append(v)
                    owners.append(k)
                else:
                    self._other(v, fi, hits, k)
            if vals:
                fi.scan(vals, owners, hits)
        rules = self.rules
        if not any(self.two):
            return [
                _NONE if not h else [rules[i >> 1] for i in sorted(h)] if len(h) > 1
                else [rules[min(h) >> 1]]
                for h in hits
            ]
        two = self.two
        return [  # a rule whose gate 0 hit, and its gate 1 where it has one
            _NONE if not h else
            [rules[i >> 1] for i in sorted(h) if not i & 1 and (i + 1 in h or not two[i >> 1])]
            for h in hits
        ]

    @staticmethod
    def _other(v: Any, fi: _FieldIndex, hits: list[set[int] | None], k: int) -> None:
        """Non-string values: numbers and booleans as text, lists element by element."""
        h = hits[k]
        if h is None:
            h = hits[k] = set()
        low = _low_other(v)
        if low.__class__ is str:
            fi.hits(low, h)
        else:
            for x in low:
                fi.hits(x, h)
