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

What an event hit is an integer, one bit per rule gate: merging a field's hits is one `|`, a
column of them one C-level `map`, and the rules an event runs are looked up by that integer (the
same few combinations recur across a stream), so no set is built per event.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import accumulate, compress, repeat
from operator import attrgetter, or_
from typing import Any

from ahocorasick_rs import AhoCorasick, Implementation

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import KEYWORD_FIELD, to_text
from dcops.detect.values import Atom
from dcops.model.event import Event

# values probed after which a field whose values rarely repeat (messages: more than 80 % new)
# stops memoising and is searched a batch at a time
_MEMO_PROBE = 1024
_CACHE_MAX = 50_000  # memoised values per field before the memo starts afresh
_SHORT = 2  # one-character substrings would hit at almost every position: tested alone
START, END = "\x00", "\x01"  # frame of a value in the searched text
_FRAME = END + START
_DFA_MAX = 300  # patterns up to which an automaton is a DFA: faster, but 2,000 cost 32 MB more
# over 13 Windows logsources, 300 cost 3 MB more than the NFA
_SCAN_MAX = 1 << 20  # characters searched at once: a batch of 64 KiB messages is split
_NONE: tuple[CompiledRule, ...] = ()
_FIELDS = attrgetter("fields")
_SELECT_MAX = 4096  # hit combinations remembered per bucket before the memo starts afresh
_STR = {str}
_STR_NONE = {str, type(None)}
_memo_or: Callable[[list[dict[str, Any]], str, dict[Any, int], Callable[[Any], int], list[int]],
                   None] | None = None
try:  # a memoised column in one C loop (_fastread.c, built by make setup; jsonio warns without)
    from dcops.detect._fastread import memo_or as _compiled_memo_or
except ImportError:  # pragma: no cover - tests/unit/detect/test_fastread.py fails instead
    pass
else:
    if not os.environ.get("DCOPS_DETECT_PURE"):  # set: the Python engine, for comparison
        _memo_or = _compiled_memo_or


def _framed(kind: str, lit: str) -> str:
    if kind == "eq":
        return START + lit + END
    if kind == "prefix":
        return START + lit
    if kind == "suffix":
        return lit + END
    return lit


class _Memo(dict[Any, int]):
    """A field's memo, raw value -> gates. A value it does not hold is worked out by its field
    (`__missing__`), so a column is one C-level `map` of `__getitem__`, with no second pass to
    find the misses (`None in got` compared every gate integer with None: 1 % of an event)."""

    __slots__ = ("fi",)

    def __init__(self, fi: _FieldIndex) -> None:
        super().__init__({None: 0})  # None: the field is absent, no gate
        self.fi = fi

    def __missing__(self, v: Any) -> int:
        return self.fi.miss(v)

    def restart(self) -> None:
        """Empty, but for None."""
        self.clear()
        self[None] = 0


class _FieldIndex:
    """The atoms of one field: one automaton, and the rule gates behind each of its patterns.

    A set of gates is an integer with bit i for gate i (`RuleBucket` numbers them)."""

    __slots__ = ("ac", "cache", "masks", "memo", "misses", "patterns", "probed", "searched",
                 "short")

    def __init__(self) -> None:
        self.patterns: dict[str, list[int]] = defaultdict(list)  # framed literal -> gates
        self.short: tuple[tuple[str, int], ...] = ()
        self.ac: AhoCorasick | None = None
        self.searched: tuple[str, ...] = ()  # the automaton's patterns, in its order
        self.masks: tuple[int, ...] = ()  # pattern number -> its gates as bits
        # raw value -> gates (values repeat a lot); None (field absent) -> none; an integer
        # or boolean value by (type, value)
        self.cache = _Memo(self)
        self.memo = True  # turned off for fields whose values rarely repeat (messages)
        self.probed = 0  # values looked up in the memo while it was on
        self.misses = 0  # of which it did not hold

    def add(self, kind: str, lit: str, idx: int) -> None:
        """One atom of gate `idx` (kind: eq, prefix, suffix or contains; lowercase literal)."""
        self.patterns[_framed(kind, lit)].append(idx)

    def freeze(self) -> None:
        """Build the automaton once every atom is in."""
        pats = {p: sum(1 << i for i in set(v)) for p, v in self.patterns.items()}
        # a substring of one or two characters (':' from a wildcard pattern) occurs in most
        # values: as a pattern it would report a match at nearly every position
        short = {p for p in pats if len(p) < _SHORT and START not in p and END not in p}
        self.short = tuple((p, pats[p]) for p in short)
        long_ = {p: v for p, v in pats.items() if p not in short}
        self.masks = tuple(long_.values())
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

    def _remember(self, key: Any, got: int) -> None:
        if len(self.cache) >= _CACHE_MAX:
            self.cache.restart()
        self.cache[key] = got

    def miss(self, v: Any) -> int:
        """The gates of a value the memo does not hold: text searched and memoised (Image,
        User, type repeat; counted as a miss), an integer or boolean by `lookup_int`, anything
        else (a list, a float) worked out each time."""
        if v.__class__ is str:
            self.misses += 1
            got = self.hits(v.lower())
            self._remember(v, got)
            return got
        if v.__class__ is int or v.__class__ is bool:
            return self.lookup_int(v)
        return 0 if v is None else self.other(v)

    def gates(self, v: Any) -> int:
        """The gates of any value, one the memo cannot hold (a list) included."""
        try:
            return self.cache[v]
        except TypeError:  # unhashable
            return self.other(v)

    def other(self, v: Any) -> int:
        """The gates of a value that is not text: numbers and booleans as text, lists element
        by element."""
        low = _low_other(v)
        if low.__class__ is str:
            return self.hits(low)
        out = 0
        for x in low:
            out |= self.hits(x)
        return out

    def probe_done(self, n: int) -> None:
        """Count n values probed; past _MEMO_PROBE, a memo that mostly misses is dropped."""
        self.probed += n
        if self.probed >= _MEMO_PROBE and self.misses > 0.8 * self.probed:
            self.memo = False
            self.cache.restart()

    def lookup_int(self, v: int) -> int:
        """`lookup` for an integer or boolean value (ports, event ids, flags): memoised by type
        and value, so True and 1 (equal in Python, "true" and "1" as text) stay apart."""
        key = (v.__class__, v)
        got = self.cache.get(key)
        if got is None:
            got = self.hits(to_text(v).lower())
            self._remember(key, got)
        return got

    def hits(self, v: str) -> int:
        """The gates one of whose literals the (lowercase) value holds."""
        out = 0
        ac = self.ac
        if ac is not None:
            masks = self.masks
            for m in ac.find_matches_as_indexes(START + v + END, overlapping=True):
                out |= masks[m[0]]
        for lit, gates in self.short:
            if lit in v:
                out |= gates
        return out

    def scan(self, vals: list[str], owners: Sequence[int], hits: list[int]) -> None:
        """`hits` for many raw values in one search: value k's gates go to hits[owners[k]]."""
        if len(vals) > 1 and sum(map(len, vals)) > _SCAN_MAX:  # halves: the text stays small
            mid = len(vals) // 2
            self.scan(vals[:mid], owners[:mid], hits)
            self.scan(vals[mid:], owners[mid:], hits)
        else:
            self._scan(vals, owners, hits)

    def _scan(self, vals: list[str], owners: Sequence[int], hits: list[int]) -> None:
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
            masks = self.masks
            for p, s, _ in ac.find_matches_as_indexes(low, overlapping=True):
                hits[owners[bisect_right(starts, s) - 1]] |= masks[p]
        for lit, gates in self.short:
            if lit in low:  # rare: find the values that hold it
                for j in range(len(vals)):
                    if lit in low[starts[j] + 1 : starts[j + 1] - 1]:
                        hits[owners[j]] |= gates


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
        # gate 2 * position is the rule's first literal set, 2 * position + 1 the second of a
        # rule that has two (both must hit); a rule without literals has gate 0 always open
        self.always = 0
        self.two: list[bool] = []
        fields: dict[str, _FieldIndex] = {}
        for pos, r in enumerate(self.rules):
            gates = _gates(r)
            self.two.append(len(gates) == 2)
            if not gates:
                self.always |= 1 << (2 * pos)
            for gate, atoms in enumerate(gates):
                for fname, kind, lit in atoms:
                    fields.setdefault(fname, _FieldIndex()).add(kind, lit, 2 * pos + gate)
        for fi in fields.values():
            fi.freeze()
        self.fields = tuple(fields.items())
        # open gates -> the rules they let run, in load order
        self._selected: dict[int, tuple[CompiledRule, ...]] = {0: _NONE}

    def candidates(self, events: Sequence[Event]) -> list[Sequence[CompiledRule]]:
        """Per event, the rules it may match, in load order.

        Column at a time: a field's values of the whole batch are fetched, memo-probed and
        merged by C-level `map`, so Python code runs only for the values that miss the memo
        and the matches of the searched fields; the rules are then one dict probe per event.
        """
        hits = [self.always] * len(events)
        self._search(self.fields, events, hits)
        sel = self._selected
        out: list[Sequence[CompiledRule] | None] = list(map(sel.get, hits))
        if None in out:
            for k in [k for k, o in enumerate(out) if o is None]:
                out[k] = self._select(hits[k])
        return out  # type: ignore[return-value]

    def _select(self, mask: int) -> tuple[CompiledRule, ...]:
        """The rules whose gates `mask` opens: gate 0, and gate 1 where the rule has two."""
        got = self._selected.get(mask)
        if got is None:
            rules, two = self.rules, self.two
            chosen = []
            m = mask
            while m:
                low = m & -m
                i = low.bit_length() - 1
                m ^= low
                if not i & 1 and (not two[i >> 1] or mask >> (i + 1) & 1):
                    chosen.append(rules[i >> 1])
            got = tuple(chosen) if chosen else _NONE
            if len(self._selected) >= _SELECT_MAX:
                self._selected.clear()
                self._selected[0] = _NONE
            self._selected[mask] = got
        return got

    def _search(self, fields: tuple[tuple[str, _FieldIndex], ...], events: Sequence[Event],
                hits: list[int]) -> None:
        """OR into hits[k] the gates whose atoms in `fields` event k holds."""
        fl = list(map(_FIELDS, events))
        for fname, fi in fields:
            if fi.memo and _memo_or is not None and fname != KEYWORD_FIELD:
                _memo_or(fl, fname, fi.cache, fi.gates, hits)
                fi.probe_done(len(fl))
                continue
            col = list(map(dict.get, fl, repeat("message" if fname == KEYWORD_FIELD
                                                 else fname)))
            if fname == KEYWORD_FIELD and None in col:  # Ctx.value(KEYWORD_FIELD): message,
                for k, v in enumerate(col):  # else raw
                    if v is None:
                        col[k] = events[k].raw or None
            if (not col or col[0] is None) and col.count(None) == len(col):  # no event has it
                continue  # (auditd's a2..a7): no gate; comparing text with None costs: col[0] first
            if fi.memo:
                self._memo_column(fi, col, hits)
            else:
                self._scan_column(fi, col, hits)

    def _memo_column(self, fi: _FieldIndex, col: list[Any], hits: list[int]) -> None:
        """A memoised field's column: one C-level probe of the memo per value (absent values
        are memoised as None -> no gates); a miss goes to the field from inside the probe."""
        try:  # a miss is worked out by the memo's __missing__
            got = list(map(fi.cache.__getitem__, col))
        except TypeError:  # an unhashable value (a list): value by value
            got = list(map(fi.gates, col))
        n = len(got)
        fi.probe_done(n)
        if got.count(0) * 4 >= 3 * n:  # few values hit: only those
            for k in compress(range(n), got):
                hits[k] |= got[k]
        else:
            hits[:] = map(or_, hits, got)

    def _scan_column(self, fi: _FieldIndex, col: list[Any], hits: list[int]) -> None:
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
                    hits[k] |= fi.other(v)
        if vals:
            fi.scan(vals, owners, hits)
