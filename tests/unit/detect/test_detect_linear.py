"""Rule regexes and wildcard values run in linear time and give exactly `re`'s answers."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
import re2
import yaml
from detect_helpers import make_event, rule

from dcops.detect import Engine
from dcops.detect.linear import Regex, glob, translate
from dcops.detect.rxatoms import regex_literals

ROOT = Path(__file__).resolve().parents[3]
_BESIDE = ROOT.parent / "shared"
SHARED = Path(os.environ.get("DCOPS_SHARED_DIR") or next(
    (p for p in (_BESIDE, Path("/work/shared")) if p.is_dir()), _BESIDE))  # fmt: skip
SIGMAHQ = SHARED / "sigmahq"

# SigmaHQ's PowerShell token obfuscation regex: 12 s on 64 KiB with `re`
TOKEN_OBFUSCATION = r"\w+`(?:\w+|-|.)`[\w+|\s]"
# characters where Unicode and ASCII semantics or RE2's and re's case folding part ways
TRICKY = ["ế", "Ế", "İ", "\u0131", "\u017f", "\u212a", "µ", "ß", "Σ", "ς", "٣", "Ⅻ", "\u00a0",
          "\u2028", "\x1c", "\ufffd", "\ud800", "\n", "\r", "\t", " ", "_", "-", "`", "\\", "/",
          ".", "0", "9"]
EVERY = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))


def _runs(rx_text: str) -> list[tuple[int, int]]:
    """Spans of the code points a one-character RE2 class accepts, over every code point."""
    rx = re2.compile(f"(?:{rx_text})+")
    return [m.span() for m in rx.finditer(EVERY)]


@pytest.mark.parametrize("pattern", [
    r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", ".", "(?s).", "[a-z]", "[^a-z]", "(?i)[a-z]",
    "(?i)[^a-z]", "(?i)i", "(?i)I", "(?i)k", "(?i)s", "(?i)ß", "(?i)ế", "(?i)µ", "(?i)Σ",
    r"[\w+|\s]", r"(?i)[\w-]", r"(?a)\w", r"(?a)\s", "(?ai)k", r"(?i)[^\W\d]", "[^x]",
    "(?i)[h-j]", "(?i)\u0130", "(?i)[^i]", r"[\d\u00e0-\u00ff]", "(?i)[à-ÿ]",
])
def test_every_character_test_accepts_exactly_what_re_accepts(pattern: str) -> None:
    text, ascii_only = translate(pattern)
    assert not ascii_only
    head = re.match(r"\(\?[a-z]+\)", pattern)  # global flags stay in front
    cut = head.end() if head else 0
    want = [m.span() for m in re.finditer(f"{pattern[:cut]}(?:{pattern[cut:]})+", EVERY)]
    assert _runs(text) == want


def _sigmahq_regexes() -> list[tuple[str, int]]:
    if not SIGMAHQ.is_dir():
        pytest.fail(f"SigmaHQ rules not found at {SIGMAHQ} (set DCOPS_SHARED_DIR)")
    found: set[tuple[str, int]] = set()

    def walk(x: object, key: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, str(k))
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, str) and "|re" in key:
            flags = 0
            for m in key.split("|")[1:]:
                flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(m, 0)
            found.add((x, flags))

    for f in sorted(SIGMAHQ.rglob("*.yml")):
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                walk(doc.get("detection", {}), "")
    return sorted(found)


def _texts(rng: random.Random, pattern: str, flags: int, n: int) -> list[str]:
    lits = sorted(regex_literals(pattern, flags) or [])
    chars = [c for c in pattern if c.isprintable()]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 8)):
            k = rng.random()
            if k < 0.3 and lits:
                lit = rng.choice(lits)
                parts.append(lit.upper() if rng.random() < 0.5 else lit)
            elif k < 0.6:
                parts.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 6))))
            else:
                parts.append("".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 4))))
        out.append("".join(parts))
    return out


def test_every_sigmahq_regex_runs_on_re2_with_re_answers() -> None:
    regexes = _sigmahq_regexes()
    assert len(regexes) > 100
    compiled = [Regex(p, f) for p, f in regexes]
    assert {r.py.pattern: r.unsafe_reason for r in compiled if r.unsafe_reason} == {}
    rng = random.Random(7)
    hits = 0
    for r in compiled:
        for text in _texts(rng, r.py.pattern, r.py.flags, 120):
            want = r.py.search(text) is not None
            assert r.search(text) is want, (r.py.pattern, text)
            hits += want
    assert hits > 300  # the texts reach the matches, not only the misses


def test_a_long_hostile_value_meets_re2_not_backtracking() -> None:
    rx = Regex(TOKEN_OBFUSCATION)
    assert rx.rx2 is not None and not rx.needs_ascii
    # 64 KiB of word characters and one backquote: `re` spends about 12 s here
    assert rx.search("0" * 65536 + "`") is False
    assert rx.search("ế" * 65536 + "`") is False
    assert rx.search("IN`V`o`Ke-eXp`ResSIOn") is True
    assert rx.search("ế`ế`ế") is (re.search(TOKEN_OBFUSCATION, "ế`ế`ế") is not None) is True


@pytest.mark.parametrize(("pattern", "flags", "texts"), [
    ("abc$", 0, ["abc", "abc\n", "abc\n\n", "abcd", "xabc"]),
    (r"(?:a|b$)", 0, ["b", "b\n", "bx", "xa"]),
    ("^b$", re.MULTILINE, ["a\nb\nc", "a\nbc", "b"]),
    (r"\Aab\Z", 0, ["ab", "ab\n", "xab"]),
    ("(?i)STRASSE", 0, ["straße", "STRASSE", "strasse"]),
    ("(?i:k)A", 0, ["\u212aA", "ka", "KA"]),
    (".+", 0, ["\n", "a\n", "\ud800"]),
    ("(?s).+x", 0, ["\n\nx", "\ud800x"]),
    ("a{2,1000}b", 0, ["a" * 999 + "b", "ab"]),
])
def test_anchors_flags_and_counts_keep_re_semantics(
    pattern: str, flags: int, texts: list[str]
) -> None:
    rx = Regex(pattern, flags)
    assert rx.rx2 is not None, rx.unsafe_reason
    for t in texts:
        assert rx.search(t) is (re.search(pattern, t, flags) is not None), t


@pytest.mark.parametrize(("pattern", "why"), [
    ("(curl$|wget)x", "'$' with something after it"),
    ("a{2,1001}", "above 1000"),
    ("(a)\\1", "groupref"),
    ("(?<=curl )http", "assert"),
    ("a*+b", "possessive"),
    ("\ud800", "surrogate"),
])
def test_what_has_no_exact_re2_form_stays_on_re_and_says_why(pattern: str, why: str) -> None:
    rx = Regex(pattern)
    assert rx.rx2 is None and why in rx.unsafe_reason
    for t in ["curlx", "curl http", "aa", "a" * 1001, "aab", "\ud800"]:
        assert rx.search(t) is (re.search(pattern, t) is not None)


def test_word_boundaries_run_on_re2_for_ascii_and_on_re_otherwise() -> None:
    rx = Regex(r"\bfoo")
    assert rx.rx2 is not None and rx.needs_ascii  # RE2's \b is ASCII
    for t in ["foo", "a foo", "afoo", "ếfoo", "ế foo", "_foo"]:
        assert rx.search(t) is (re.search(r"\bfoo", t) is not None), t
    assert not Regex(r"(?a)\bfoo").needs_ascii


def _old_glob(parts: list[str | None], flags: int) -> re.Pattern[str]:
    return re.compile("".join(".*" if p is None else p for p in parts), flags | re.DOTALL)


def test_a_wildcard_value_answers_as_the_regex_fullmatch_did() -> None:
    rng = random.Random(3)
    alpha = ["a", "A", "b", "İ", "\u0131", "i", "I", "\u017f", "s", "\u212a", "k", ".", "\\", "\n",
             "ế", "ß"]
    hits = 0
    for _ in range(600):
        parts: list[str | None] = []
        for _ in range(rng.randint(1, 6)):
            k = rng.random()
            parts.append(None if k < 0.3 else "." if k < 0.45 else re.escape(
                "".join(rng.choice(alpha) for _ in range(rng.randint(1, 3)))))
        for flags in (0, re.IGNORECASE):
            mine, old = glob(parts, flags), _old_glob(parts, flags)
            for _ in range(20):
                text = "".join(rng.choice(alpha) for _ in range(rng.randint(0, 9)))
                want = old.fullmatch(text) is not None
                assert mine(text) is want, (parts, flags, text)
                hits += want
    assert hits > 1000


def test_a_wildcard_value_is_linear_on_a_hostile_value() -> None:
    # `*a*a*a*b`: the regex `.*a.*a.*a.*b` took 50 s on 4,000 characters
    star = glob([None, "a", None, "a", None, "a", None, "b"], re.IGNORECASE)
    assert star("a" * 65536) is False
    assert star("a" * 65536 + "B") is True


def test_a_rule_runs_a_hostile_command_line_and_the_next_event(
    engine_from: object,
) -> None:
    eng: Engine = engine_from(rule(  # type: ignore[operator]
        f"  sel:\n    CommandLine|re: '{TOKEN_OBFUSCATION}'\n  star:\n"
        "    CommandLine: '*a*a*a*b'\n  condition: sel or star"))
    hostile = make_event({"CommandLine": "0" * 65536 + "`a"})
    glob_hostile = make_event({"CommandLine": "a" * 65536})
    real = make_event({"CommandLine": "IN`V`o`Ke-eXp`ResSIOn (Ne`W-ob`ject Net.WebClient)"})
    got = [d.event_ids[0] for d in eng.process([hostile, glob_hostile, real])]
    assert got == [real.id]


@pytest.mark.parametrize(("pattern", "flags", "shortest"), [
    ("[^/]{100,}$", 0, 100),  # SigmaHQ's long file name rule: short paths skip the search
    ("(?i)ab(c|de)", 0, 3),
    ("(?=abc)", 0, 0),
    (r"(a+)\1x", 0, 3),
    ("ß", re.IGNORECASE, 1),
])
def test_a_value_shorter_than_any_match_is_answered_without_searching(
    pattern: str, flags: int, shortest: int,
) -> None:
    rx = Regex(pattern, flags)
    assert rx.min_len == shortest
    rng = random.Random(3)
    for _ in range(400):
        text = "".join(rng.choice("abcdeßSS/x") for _ in range(rng.randint(0, 130)))
        assert rx.search(text) is (rx.py.search(text) is not None), text
    assert rx.search("a" * 200 if shortest != 1 else "ß") is (
        rx.py.search("a" * 200 if shortest != 1 else "ß") is not None)
