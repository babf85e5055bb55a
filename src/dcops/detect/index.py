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
from itertools import accumulate, compress, repeat
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import KEYWORD_FIELD, to_text
from dcops.detect.values import Atom
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
_STR = {str}
_STR_NONE = {str, type(None)}


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
        # raw value -> rules (values repeat a lot); None (field absent) -> no rules; an integer
        # or boolean value by (type, value)
        self.cache: dict[Any, tuple[int, ...]] = {None: ()}
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
                self.cache[None] = ()
            self.cache[raw] = got
        self.lookups += 1
        if self.lookups == _MEMO_PROBE and self.misses > 0.8 * _MEMO_PROBE:
            self.memo = False
            self.cache.clear()
            self.cache[None] = ()
        return got

    def lookup_int(self, v: int) -> tuple[int, ...]:
        """`lookup` for an integer or boolean value (ports, event ids, flags): memoised by type
        and value, so True and 1 (equal in Python, "true" and "1" as text) stay apart."""
        key = (v.__class__, v)
        got = self.cache.get(key)
        if got is None:
            acc: set[int] = set()
            self.hits(to_text(v).lower(), acc)
            got = tuple(acc)
            if len(self.cache) >= _CACHE_MAX:
                self.cache.clear()
                self.cache[None] = ()
            self.cache[key] = got
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

    def scan(self, vals: list[str], owners: Sequence[int], hits: list[set[int] | None]) -> None:
        """`hits` for many raw values in one search: value k's rules go to hits[owners[k]]."""
        if len(vals) > 1 and sum(map(len, vals)) > _SCAN_MAX:  # halves: the text stays small
            mid = len(vals) // 2
            self.scan(vals[:mid], owners[:mid], hits)
            self.scan(vals[mid:], owners[mid:], hits)
        else:
            self._scan(vals, owners, hits)

    def _scan(self, vals: list[str], owners: Sequence[int], hits: list[set[int] | None]) -> None:
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


def _gates(r: CompiledRule) -> tuple[tuple[Atom, ...], ...]:
    """The literal gates a rule is indexed by: its `atoms`, and its `also` where both are worth
    searching. A gate holding a one-character substring (':' in `'*user@*:*'`) passes nearly
    every value and costs a slice per value that holds it: beside a gate without one, it is
    dropped (the rule then runs on more events, never on fewer)."""
    if r.atoms is None:
        return ()
    if r.also is None:
        return (r.atoms,)
    weak = [any(k == "contains" and len(lit) < _SHORT for _, k, lit in g)
            for g in (r.atoms, r.also)]
    if weak[0] != weak[1]:
        return (r.also,) if weak[0] else (r.atoms,)
    return (r.atoms, r.also)


class RuleBucket:
    """The rules of one event logsource, indexed by their literals."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = list(rules)
        # a hit is 2 * rule position + gate: gate 0 is the rule's first literal set, gate 1 the
        # second of a rule that has two (both must hit)
        self.always: list[int] = []
        self.two: list[bool] = []
        fields: dict[str, _FieldIndex] = {}
        for pos, r in enumerate(self.rules):
            gates = _gates(r)
            self.two.append(len(gates) == 2)
            if not gates:
                self.always.append(2 * pos)
            for gate, atoms in enumerate(gates):
                for fname, kind, lit in atoms:
                    fields.setdefault(fname, _FieldIndex()).add(kind, lit, 2 * pos + gate)
        for fi in fields.values():
            fi.freeze()
        self.fields = tuple(fields.items())
        self.any_two = any(self.two)

    def candidates(self, events: Sequence[Event]) -> list[Sequence[CompiledRule]]:
        """Per event, the rules it may match, in load order.

        Column at a time: a field's values of the whole batch are fetched, memo-probed and
        selected by C-level `map`/`compress`, so Python code runs only for the values that hit
        or miss the memo (most events of a batch hit nothing).
        """
        n = len(events)
        always = self.always
        # rule numbers per event; None until something hits (most events hit nothing)
        hits: list[set[int] | None] = [set(always) for _ in range(n)] if always else [None] * n
        self._search(self.fields, events, hits)
        rules = self.rules
        out: list[Sequence[CompiledRule]] = [_NONE] * n
        if not self.any_two:
            for k in compress(range(n), hits):
                h: set[int] = hits[k]  # type: ignore[assignment]
                out[k] = ([rules[i >> 1] for i in sorted(h)] if len(h) > 1
                          else [rules[next(iter(h)) >> 1]])
            return out
        two = self.two
        for k in compress(range(n), hits):  # a rule whose gate 0 hit, and its gate 1 where it
            h = hits[k]  # type: ignore[assignment]  # has one
            sel = [rules[i >> 1] for i in sorted(h)
                   if not i & 1 and (i + 1 in h or not two[i >> 1])]
            if sel:
                out[k] = sel
        return out

    def _search(self, fields: tuple[tuple[str, _FieldIndex], ...], events: Sequence[Event],
                hits: list[set[int] | None]) -> None:
        """Add to hits[k] the rules whose atoms in `fields` event k holds."""
        fl = [ev.fields for ev in events]
        for fname, fi in fields:
            col = list(map(dict.get, fl, repeat("message" if fname == KEYWORD_FIELD
                                                 else fname)))
            if fname == KEYWORD_FIELD and None in col:  # Ctx.value(KEYWORD_FIELD): message,
                for k, v in enumerate(col):  # else raw
                    if v is None:
                        col[k] = events[k].raw or None
            if fi.memo:
                self._memo_column(fi, col, hits)
            else:
                self._scan_column(fi, col, hits)

    def _memo_column(self, fi: _FieldIndex, col: list[Any], hits: list[set[int] | None]) -> None:
        """A memoised field's column: one C-level probe of the memo per value (absent values
        are memoised as None -> no rules); misses and non-text values one by one."""
        try:
            got: list[tuple[int, ...] | None] = list(map(fi.cache.get, col))
        except TypeError:  # an unhashable value (a list): value by value
            got = [None] * len(col)
        if None in got:
            for k in [k for k, g in enumerate(got) if g is None]:
                v = col[k]
                if v.__class__ is str:
                    got[k] = fi.lookup(v)
                elif v.__class__ is int or v.__class__ is bool:
                    got[k] = fi.lookup_int(v)
                elif v is not None:
                    self._other(v, fi, hits, k)
        for k in compress(range(len(col)), got):
            h = hits[k]
            if h is None:
                hits[k] = set(got[k])  # type: ignore[arg-type]
            else:
                h.update(got[k])  # type: ignore[arg-type]

    def _scan_column(self, fi: _FieldIndex, col: list[Any], hits: list[set[int] | None]) -> None:
        """A field whose values rarely repeat: its text values searched together."""
        kinds = set(map(type, col))
        vals: list[str]
        owners: Sequence[int]
        if kinds == _STR:  # every event has it as text (message, CommandLine)
            vals, owners = col, range(len(col))
        elif kinds <= _STR_NONE:
            owners = [k for k, v in enumerate(col) if v is not None]
            vals = [col[k] for k in owners]
        else:
            vals, owners = [], []
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
