"""Literal-value index: which rules an event can possibly match, from a few dict lookups.

Each rule carries atoms: literals of which at least one must occur for the rule to match
(exact value, prefix, suffix or substring of a field, lowercased). An event only runs the rules
whose atoms it hits, plus the rules with no usable literal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dcops.detect.compiler import CompiledRule
from dcops.detect.context import KEYWORD_FIELD, Ctx

_MEMO_PROBE = 4096  # lookups after which a field whose values rarely repeat stops memoising
_CACHE_MAX = 50_000  # memoised values per field before the memo starts afresh
_RX_MIN = 4  # more substring literals than this on a field: prefilter them with one regex


def trie_regex(words: list[str]) -> re.Pattern[str]:
    """One regex that finds any of the words, factored as a trie (several times faster)."""
    return re.compile(trie_pattern(words), re.DOTALL)


def trie_pattern(words: list[str]) -> str:
    """The regex source of trie_regex: at one position it matches the longest word there."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:  # a word ends here: the rest is optional
            return f"(?:{body})?"
        return body

    return emit(trie)


# Characters from the most to the least frequent in log lines and command lines (lowercased):
# separators, digits, then letters by English frequency, then rarer punctuation.
_COMMON = " /.-:=_0123456789etaoinsrlhdcumpfgybwkvx,'\"()[]jqz;"
_RANK = {c: i for i, c in enumerate(_COMMON)}
_ANCHOR = 4


def anchor(lit: str) -> str:
    """A short piece of a literal that starts at its rarest character (at least 3 long).

    A regex over these pieces only starts work where a rare character occurs, so it rejects an
    ordinary value several times faster than one over the whole literals; a hit is confirmed
    against the literals themselves.
    """
    if len(lit) <= _ANCHOR:
        return lit
    rare = len(_COMMON)
    pos = max(range(len(lit) - 2), key=lambda p: (_RANK.get(lit[p], rare), -p))
    return lit[pos : pos + _ANCHOR]


class _FieldIndex:
    """The atoms of one field."""

    __slots__ = (
        "anchored",
        "base",
        "base_keys",
        "cache",
        "contains",
        "contains_rx",
        "contains_short",
        "eq",
        "lookups",
        "memo",
        "misses",
        "prefix",
        "prefix_keys",
        "prefix_lens",
        "suffix",
        "suffix_keys",
        "suffix_lens",
    )

    def __init__(self) -> None:
        self.eq: dict[str, list[int]] = defaultdict(list)
        self.base: dict[str, list[int]] = defaultdict(list)  # last path component of a suffix
        self.prefix: dict[str, list[int]] = defaultdict(list)
        self.suffix: dict[str, list[int]] = defaultdict(list)
        self.contains: dict[str, list[int]] = defaultdict(list)
        self.contains_rx: re.Pattern[str] | None = None  # finds the anchors
        # anchor -> the literals it vouches for (its own and those of anchors it starts with)
        self.anchored: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {}
        self.cache: dict[str, tuple[int, ...]] = {}  # raw value -> rules (values repeat a lot)
        self.memo = True  # turned off for fields whose values rarely repeat (messages)
        self.lookups = 0
        self.misses = 0
        self.contains_short: tuple[tuple[str, list[int]], ...] = ()
        self.prefix_lens: tuple[int, ...] = ()
        self.suffix_lens: tuple[int, ...] = ()
        # str.startswith/endswith of a tuple reject most values in one C call
        self.base_keys: tuple[str, ...] = ()
        self.prefix_keys: tuple[str, ...] = ()
        self.suffix_keys: tuple[str, ...] = ()

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
        self.base_keys = tuple(self.base)  # a value whose last component is one ends with it
        self.prefix_keys = tuple(self.prefix)
        self.suffix_keys = tuple(self.suffix)
        if len(self.contains) > _RX_MIN:
            # one regex pass rejects most values; only a hit pays for the per-literal loop.
            # Very short literals (':' from a wildcard pattern) would make it hit always, so
            # they are checked on their own.
            short = {k: v for k, v in self.contains.items() if len(k) < 3}
            self.contains_short = tuple(short.items())
            self.contains = {k: v for k, v in self.contains.items() if k not in short}
            by_anchor: dict[str, list[tuple[str, tuple[int, ...]]]] = defaultdict(list)
            for k, v in self.contains.items():
                by_anchor[anchor(k)].append((k, tuple(v)))
            # Searching again one character after each hit finds every position where an
            # anchor starts, overlapping ones too; at one position the trie matches the longest
            # anchor, so it also stands for the shorter anchors it begins with.
            self.anchored = {
                a: tuple(x for b, lits in by_anchor.items() if a.startswith(b) for x in lits)
                for a in by_anchor
            }
            self.contains_rx = re.compile(trie_pattern(sorted(by_anchor)), re.DOTALL)

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

    def hits(self, v: str, out: set[int]) -> None:  # noqa: PLR0912 - the hot path, inlined
        """Add the rules whose literal occurs in the (lowercase) value."""
        if self.eq:
            got = self.eq.get(v)
            if got:
                out.update(got)
        if v.endswith(self.base_keys):
            got = self.base.get(v[max(v.rfind("/"), v.rfind("\\")) + 1 :])
            if got:
                out.update(got)
        if v.startswith(self.prefix_keys):
            n = len(v)
            pre = self.prefix
            for ln in self.prefix_lens:
                if ln > n:
                    break
                got = pre.get(v[:ln])
                if got:
                    out.update(got)
        if v.endswith(self.suffix_keys):
            n = len(v)
            suf = self.suffix
            for ln in self.suffix_lens:
                if ln > n:
                    break
                got = suf.get(v[n - ln :])
                if got:
                    out.update(got)
        for lit, rules in self.contains_short:
            if lit in v:
                out.update(rules)
        rx = self.contains_rx
        if rx is not None:
            m = rx.search(v)  # most values hit no anchor: one fast scan rejects them
            if m is not None:
                # a plain search from the next position keeps the regex engine's fast scan for
                # a first character (a lookahead finditer tries the whole trie everywhere)
                search = rx.search
                found = set()
                while m is not None:
                    found.add(m.group())
                    m = search(v, m.start() + 1)
                anchored = self.anchored
                for a in found:
                    for lit, ids in anchored[a]:
                        if lit in v:
                            out.update(ids)
        elif self.contains:
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
        self.keywords = fields.pop(KEYWORD_FIELD, None)  # searched in message, else raw
        self.named = tuple(fields.items())

    def candidates(self, ctx: Ctx) -> list[CompiledRule]:  # noqa: PLR0912 - the hot path
        """Rules this event may match, in load order."""
        hit: set[int] = set(self.always)
        fields = ctx.fields
        kw = self.keywords
        if kw is not None:
            raw = fields.get("message")  # what Ctx.value(KEYWORD_FIELD) reads, inlined
            if raw is None:
                raw = ctx.raw or None
            if raw.__class__ is str and not kw.memo:
                kw.hits(raw.lower(), hit)
            elif raw is not None:
                self._one(ctx, KEYWORD_FIELD, kw, raw, hit)
        for fname, fi in self.named:
            raw = fields.get(fname)
            if raw is None:
                continue
            if raw.__class__ is str:
                if fi.memo:
                    got = fi.cache.get(raw)  # inlined fast path of fi.lookup
                    if got is None:
                        got = fi.lookup(raw)
                    if got:
                        hit.update(got)
                else:
                    fi.hits(raw.lower(), hit)
                continue
            self._other(ctx, fname, fi, hit)
        if not hit:
            return []
        rules = self.rules
        if len(hit) == 1:
            return [rules[hit.pop()]]
        return [rules[i] for i in sorted(hit)]

    def _one(self, ctx: Ctx, fname: str, fi: _FieldIndex, raw: Any, hit: set[int]) -> None:
        """One field's value, whatever its type."""
        if raw.__class__ is str:
            if fi.memo:
                hit.update(fi.lookup(raw))
            else:
                fi.hits(raw.lower(), hit)
        else:
            self._other(ctx, fname, fi, hit)

    @staticmethod
    def _other(ctx: Ctx, fname: str, fi: _FieldIndex, hit: set[int]) -> None:
        """Non-string values: numbers as text, lists element by element."""
        v = ctx.low(fname)
        if v is None:
            return
        if v.__class__ is str:
            fi.hits(v, hit)  # type: ignore[arg-type,unused-ignore]
        else:
            for x in v:
                fi.hits(x, hit)
