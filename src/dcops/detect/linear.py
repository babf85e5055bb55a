"""Rule patterns in time linear in the value: an event's text is attacker-controlled.

Python's `re` backtracks. SigmaHQ's PowerShell token obfuscation regex (`\\w+`(?:\\w+|-|.)`...`)
took 12 s of CPU on a 64 KiB command line ending in one backquote, and a wildcard value such as
`*a*a*b` (compiled as `.*a.*a.*b`) is cubic: 50 s on 4,000 characters. One such event stalled
every rule behind it. Two matchers replace them, each with `re`'s answers:

* Wildcard values (`*`, `?`) are globs: split at `*` into fixed-length segments, the first
  matched at the start, the last at the end, the others found leftmost in order (leftmost
  leaves the most room, so this is exact). Each segment is a `re` pattern without repetition
  under the rule's own flags, so case folding is `re`'s own; the cost is O(segments x value x
  segment length).

* `|re` values are translated to RE2 (`google-re2`: automata, no backtracking) from the parse
  tree `re` itself builds. Every character test (a literal under IGNORECASE, a class, `\\w`, `.`)
  becomes the explicit set of code points that `re` accepts for it, computed once by letting
  `re` scan every code point: RE2's own case folding and its ASCII `\\w`/`\\d`/`\\s` never come
  into play. What has no exact RE2 form (look-around, back-references, possessive and atomic
  groups, counts above 1000, `$` before something that can follow it) keeps `re` and is
  reported by `unsafe_reason`. RE2's `\\b` is ASCII: a regex with `\\b` runs on RE2 when the
  value is ASCII and on `re` otherwise. RE2 reads UTF-8, so lone surrogates (which only
  `.`-like sets can match, and then as U+FFFD also is) are replaced by U+FFFD first.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from array import array
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2
from re2 import _re2

C: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")
sre_compile: Any = importlib.import_module("re._compiler")

log = logging.getLogger(__name__)
_RE2: Any = _re2.RE2
_UNANCHORED: Any = _re2.RE2.Anchor.UNANCHORED

_RE2_MAX_REPEAT = 1000  # RE2 refuses larger counts
_RE2_MEM = 64 << 20  # a class of every word character is a large automaton
_CHAR_FLAGS = re.IGNORECASE | re.ASCII | re.UNICODE | re.DOTALL  # what decides a character test
_SURROGATES = "".join(map(chr, range(0xD800, 0xE000)))
_SURROGATE_RX = re.compile("[\ud800-\udfff]")
_ALL: list[str] = []  # every code point but the surrogates, built on first use


# the rule regexes of this process that stay on `re`, with why (`dcops detect check` lists them)
_BACKTRACKING: dict[str, str] = {}
_BACKTRACKING_MAX = 1000


def backtracking() -> dict[str, str]:
    """Regexes compiled in this process that run on `re` (backtracking), and why."""
    return dict(_BACKTRACKING)


class UntranslatableError(Exception):
    """A construct with no exact RE2 equivalent."""


def _every_char() -> str:
    """Every code point but the surrogates, in order (index i is code point i below U+D800 and
    i + 0x800 above), built without a string object per character."""
    if not _ALL:
        codes = array("I", range(0xD800))
        codes.extend(range(0xE000, 0x110000))
        _ALL.append(codes.tobytes().decode("utf-32-le" if sys.byteorder == "little"
                                           else "utf-32-be"))
    return _ALL[0]


def _code(i: int) -> int:
    return i if i < 0xD800 else i + 0x800


def _ranges(spans: list[tuple[int, int]]) -> str:
    out = [f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in spans]
    return "[" + "".join(out) + "]" if out else r"[^\x00-\x{10FFFF}]"


@lru_cache(maxsize=4096)
def _scanned(op: Any, av: Any, flags: int) -> str:
    """The RE2 class of the code points `re` accepts for one character test under `flags`,
    found by letting `re` replace every code point it accepts."""
    if not flags & re.ASCII:
        flags |= re.UNICODE  # what re.compile adds to a str pattern
    state = sre_parse.State()
    state.flags = flags
    rx = sre_compile.compile(sre_parse.SubPattern(state, [(op, av)]), flags)
    surrogates = len(rx.findall(_SURROGATES))
    fffd = rx.fullmatch("\ufffd") is not None
    if surrogates not in (0, len(_SURROGATES)) or (surrogates > 0) != fffd:
        raise UntranslatableError("a character set that tells surrogates from U+FFFD")
    mark = rx.sub("\x01", _every_char())  # one character in, one out: indexes stay
    spans = [(_code(m.start()), _code(m.end() - 1)) for m in re.finditer("\x01+", mark)]
    if rx.fullmatch("\x01") is None:  # U+0001 itself stood in `mark`, unaccepted
        spans = _without(spans, 1)
    return _ranges(_merge(spans))


def _without(spans: list[tuple[int, int]], code: int) -> list[tuple[int, int]]:
    out = []
    for lo, hi in spans:
        if lo <= code <= hi:
            out += [(a, b) for a, b in ((lo, code - 1), (code + 1, hi)) if a <= b]
        else:
            out.append((lo, hi))
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping or adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _plain_spans(items: Any) -> list[tuple[int, int]] | None:
    """A class of literals and ranges only, as merged spans; None when it has anything else or
    touches U+FFFD or a surrogate (then `re` decides by a scan)."""
    if not all(i in (C.LITERAL, C.RANGE) for i, _ in items):
        return None
    spans = sorted((a, a) if i is C.LITERAL else a for i, a in items)
    if any(lo <= 0xFFFD <= hi or (lo < 0xE000 and hi >= 0xD800) for lo, hi in spans):
        return None
    return _merge(spans)


def _char_class(op: Any, av: Any, flags: int) -> str:
    """RE2 for one character test: written directly where `re`'s meaning is plain (no case
    folding, no category), otherwise scanned (cached: \\w is scanned once per process)."""
    if not flags & re.IGNORECASE:
        if op is C.ANY:
            return r"[\x{0}-\x{10FFFF}]" if flags & re.DOTALL else r"[^\n]"
        if op is C.NOT_LITERAL:
            return "[^" + _literal(av) + "]"
        if op is C.IN:
            negated = bool(av) and av[0][0] is C.NEGATE
            spans = _plain_spans(av[1:] if negated else av)
            if spans is not None:
                return ("[^" if negated else "[") + _ranges(spans)[1:]
    elif op is C.LITERAL and chr(av).lower() == chr(av).upper() == chr(av) and av < 128:
        return _literal(av)  # no case: digits, punctuation
    return _scanned(op, av, flags)


def _literal(code: int) -> str:
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    if 0xD800 <= code < 0xE000 or code == 0xFFFD:
        raise UntranslatableError("a surrogate or U+FFFD literal")
    return f"\\x{{{code:x}}}"


class _Translate:
    def __init__(self) -> None:
        self.needs_ascii = False  # \b: RE2's is ASCII

    def seq(self, items: Any, flags: int, tail: bool) -> str:
        last = len(items) - 1
        return "".join(self.node(op, av, flags, tail and i == last)
                       for i, (op, av) in enumerate(items))

    def node(self, op: Any, av: Any, flags: int, tail: bool) -> str:  # noqa: PLR0911
        if op is C.LITERAL and not flags & re.IGNORECASE:
            return _literal(av)
        if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.CATEGORY, C.ANY):
            key = tuple(av) if isinstance(av, list) else av
            return _char_class(op, key, flags & _CHAR_FLAGS)
        if op is C.BRANCH:
            return "(?:" + "|".join(self.seq(alt, flags, tail) for alt in av[1]) + ")"
        if op is C.SUBPATTERN:
            _group, add, rem, sub = av
            return "(?:" + self.seq(sub, (flags | add) & ~rem, tail) + ")"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):  # lazy or greedy: the same whether it matches
            lo, hi, sub = av
            inner = "(?:" + self.seq(sub, flags, False) + ")"
            if lo > _RE2_MAX_REPEAT or (hi is not C.MAXREPEAT and hi > _RE2_MAX_REPEAT):
                raise UntranslatableError(f"a repeat count above {_RE2_MAX_REPEAT}")
            if hi is C.MAXREPEAT:
                return inner + ("*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}")
            return inner + f"{{{lo},{hi}}}"
        if op is C.AT:
            return self.at(av, flags, tail)
        raise UntranslatableError(f"{str(op).lower()}")

    def at(self, av: Any, flags: int, tail: bool) -> str:
        if av is C.AT_BEGINNING:
            return "(?m:^)" if flags & re.MULTILINE else r"\A"
        if av is C.AT_BEGINNING_STRING:
            return r"\A"
        if av is C.AT_END_STRING:
            return r"\z"
        if av is C.AT_END:
            if flags & re.MULTILINE:
                return "(?m:$)"  # before any newline or at the end, as in re
            if tail:  # re: at the end or before a final newline; nothing follows it here
                return r"(?:\n?\z)"
            raise UntranslatableError("'$' with something after it")
        if av in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
            if not flags & re.ASCII:
                self.needs_ascii = True
            return r"\b" if av is C.AT_BOUNDARY else r"\B"
        raise UntranslatableError(f"anchor {av}")


def translate(pattern: str, flags: int = 0) -> tuple[str, bool]:
    """RE2 text for a `re` pattern with the same matches, and whether it holds only for ASCII
    values (`\\b`); UntranslatableError names what has no exact form."""
    if flags & re.LOCALE:
        raise UntranslatableError("re.LOCALE")
    try:
        tree = sre_parse.parse(pattern, flags)
    except re.error as exc:
        raise UntranslatableError(f"not a regular expression: {exc}") from None
    t = _Translate()
    text = t.seq(tree.data, tree.state.flags, True)
    return text, t.needs_ascii


class Regex:
    """`search` of one rule regex: RE2 where the translation is exact, `re` otherwise."""

    __slots__ = ("min_len", "needs_ascii", "py", "rx2", "unsafe_reason")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.py = re.compile(pattern, flags)
        # no match is shorter than this many characters (SigmaHQ's `[^/]{100,}$` long file
        # name rule then costs a length test on the usual short path)
        self.min_len = sre_parse.parse(pattern, flags).getwidth()[0]
        self.rx2: Any = None
        self.needs_ascii = False
        self.unsafe_reason = ""
        try:
            text, self.needs_ascii = translate(pattern, flags)
            opts = re2.Options()
            opts.max_mem = _RE2_MEM
            opts.log_errors = False
            opts.never_capture = True
            # the C++ object itself: the module's `search` builds a Match and maps offsets back
            # to characters (1.0 us a call against 0.45 for a yes/no)
            rx2 = _RE2(text.encode("utf-8"), opts)
            if not rx2.ok():
                raise re2.error(rx2.error())
            self.rx2 = rx2
        except UntranslatableError as exc:
            self.unsafe_reason = str(exc)
        except re2.error as exc:
            self.unsafe_reason = f"RE2 refused the translation: {exc}"
        if self.unsafe_reason:
            log.debug("regex %r stays on re (backtracking): %s", pattern, self.unsafe_reason)
            if len(_BACKTRACKING) < _BACKTRACKING_MAX:
                _BACKTRACKING[pattern] = self.unsafe_reason

    def search(self, text: str) -> bool:
        """True when the regex occurs in the text (re.search semantics)."""
        if len(text) < self.min_len:
            return False
        rx2 = self.rx2
        if rx2 is None or (self.needs_ascii and not text.isascii()):
            return self.py.search(text) is not None
        try:
            b = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: U+FFFD is in every set they are in
            b = _SURROGATE_RX.sub("\ufffd", text).encode("utf-8")
        return bool(rx2.Match(_UNANCHORED, b, 0, len(b))[0][0] >= 0)


def glob(parts: list[str | None], flags: int) -> Callable[[str], bool]:
    """A fullmatch of a wildcard value in time linear in the value. `parts` are `re` pattern
    pieces: escaped literals, '.' for one character (`?`) and None for any run (`*`)."""
    segs: list[str] = [""]
    for p in parts:
        if p is None:
            segs.append("")
        else:
            segs[-1] += p
    flags |= re.DOTALL
    if len(segs) == 1:
        whole = re.compile(segs[0], flags)
        return lambda x: whole.fullmatch(x) is not None
    first = re.compile(segs[0], flags)
    last = re.compile(segs[-1], flags)
    mids = [re.compile(s, flags) for s in segs[1:-1] if s]
    head_len = _fixed_len(segs[0], flags)
    tail_len = _fixed_len(segs[-1], flags)

    def match(x: str) -> bool:
        if head_len and first.match(x) is None:
            return False
        pos = head_len
        end = len(x) - tail_len
        if end < pos:
            return False
        for m in mids:
            got = m.search(x, pos, end)
            if got is None:
                return False
            pos = got.end()
        return not tail_len or last.fullmatch(x, end) is not None

    return match


def _fixed_len(piece: str, flags: int) -> int:
    """Characters a piece without repetition matches (each test is one character)."""
    lo, hi = sre_parse.parse(piece, flags).getwidth()
    if lo != hi:
        raise ValueError(f"glob segment {piece!r} has no fixed length")
    return int(lo)
