"""Regex prefilter literals: any text a regex finds holds one of them (lowercased), or none."""

from __future__ import annotations

import random
import re

import pytest

from dcops.detect.rxatoms import regex_literals


@pytest.mark.parametrize(
    ("pattern", "flags", "want"),
    [
        (r"""-(W|R)\s?(\s|"|')([0-9a-fA-F]{2}\s?){2,20}(\s|"|')""", 0, {"-w", "-r"}),
        (r"[^/]{100,}$", 0, None),
        (r"(foo|barbaz)\.exe", 0, {"foo.exe", "barbaz.exe"}),
        (r"abc|de", 0, {"abc", "de"}),
        (r"x{3}yy", 0, {"xxxyy"}),
        (r"\bpowershell\b.*-enc", 0, {"powershell"}),
        (r"ISO", 0, {"iso"}),
        (r"(?i)kiss me", 0, {" me"}),  # \u0131 and \u017f match i and s yet lowercase to themselves
        (r"kiss me", re.IGNORECASE, {" me"}),
        (r"kiss me", 0, {"kiss me"}),
        (r"\u00dcn\u00efcode", 0, {"code"}),  # only ASCII goes into a literal
        (r"a?", 0, None),
        (r"(", 0, None),  # not a regex: no literals, never an error
    ],
)
def test_literals_of_known_patterns(pattern: str, flags: int, want: set[str] | None) -> None:
    got = regex_literals(pattern, flags)
    assert (set(got) if got is not None else None) == want


# (regex piece, a random text it matches)
PIECES: list[tuple[str, object]] = [
    ("a", lambda r: "a"), ("b", lambda r: "b"), ("ab", lambda r: "ab"), ("I", lambda r: "I"),
    ("s", lambda r: "s"), ("K", lambda r: "K"), ("[ab]", lambda r: r.choice("ab")),
    ("[^a]", lambda r: r.choice("bc\u0131")), (".", lambda r: r.choice("a-\u017f")),
    (r"\d", lambda r: r.choice("07")), (r"\s", lambda r: " "),
    ("x*", lambda r: "x" * r.randint(0, 2)), ("y+", lambda r: "y" * r.randint(1, 2)),
    ("(ab|c)", lambda r: r.choice(["ab", "c"])), ("(?:de|f)", lambda r: r.choice(["de", "f"])),
    ("z?", lambda r: r.choice(["", "z"])), ("(?i:q)", lambda r: r.choice("qQ")),
    ("[0-9]{2}", lambda r: "42"), ("(ab){2}", lambda r: "abab"), ("-", lambda r: "-"),
    ("\u0131", lambda r: "\u0131"), ("\u017f", lambda r: "\u017f"), ("\u00e9", lambda r: "\u00e9"),
    ("(?:is)+", lambda r: "is" * r.randint(1, 2)),
]
# what IGNORECASE lets a character of the text be instead (dotless i, long s, Kelvin sign)
FOLDS = {"i": "I\u0131\u0130", "s": "S\u017f", "k": "K\u212a", "a": "A", "b": "B",
         "I": "i\u0131", "K": "k\u212a", "S": "s\u017f"}


def test_no_text_the_regex_finds_lacks_every_literal() -> None:
    rng = random.Random(3)
    checked = 0
    for _ in range(4000):
        chosen = [rng.choice(PIECES) for _ in range(rng.randint(1, 5))]
        pattern = "".join(p for p, _ in chosen)
        flags = re.IGNORECASE if rng.random() < 0.4 else 0
        lits = regex_literals(pattern, flags)
        if lits is None:
            continue
        rx = re.compile(pattern, flags)
        for _ in range(10):
            body = "".join(gen(rng) for _, gen in chosen)  # type: ignore[operator]
            if flags:
                body = "".join(rng.choice(FOLDS.get(ch, ch) + ch) for ch in body)
            text = rng.choice(["", "zz ", "\u0130"]) + body + rng.choice(["", " q", "\u03a3"])
            if rx.search(text):
                checked += 1
                assert any(lit in text.lower() for lit in lits), (pattern, flags, text, lits)
    assert checked > 10_000
