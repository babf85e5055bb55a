"""The literal index's anchored substring gate never loses a rule whose literal occurs."""

from __future__ import annotations

import random

from dcops.detect.index import _FieldIndex, anchor

LITERALS = [
    "bash -i >& /dev/tcp/",
    "bash -i >& /dev/udp/",
    "/dev/tcp/",
    "attempt to execute code on stack by",
    "chmod +x /tmp/",
    "; chmod +x",
    "xxyy",
    "xxyyzz",
    "base64 -d ",
    "() { :; };",
    "qq",  # short: checked on its own
]


def _index() -> _FieldIndex:
    fi = _FieldIndex()
    for i, lit in enumerate(LITERALS):
        fi.add("contains", lit, i)
    fi.freeze()
    assert fi.contains_rx is not None  # enough literals for the regex gate
    return fi


def test_anchor_is_a_piece_of_the_literal_starting_at_a_rare_character() -> None:
    assert anchor("bash -i >& /dev/tcp/") == ">& /"
    assert anchor("abc") == "abc"
    for lit in LITERALS:
        assert anchor(lit) in lit


def test_every_occurring_literal_is_found_and_no_other() -> None:
    fi = _index()
    rng = random.Random(7)
    filler = "usr bin ls -l /var/log x.y:z "
    for _ in range(2000):
        chosen = rng.sample(range(len(LITERALS)), rng.randint(0, 3))
        parts = [filler[: rng.randint(0, len(filler))] for _ in range(len(chosen) + 1)]
        v = parts[0] + "".join(LITERALS[c] + p for c, p in zip(chosen, parts[1:], strict=True))
        got: set[int] = set()
        fi.hits(v, got)
        assert got == {i for i, lit in enumerate(LITERALS) if lit in v}, v


def test_overlapping_and_prefix_anchors() -> None:
    fi = _index()
    got: set[int] = set()
    fi.hits("xxyyzz and bash -i >& /dev/udp/1", got)  # xxyy is a prefix of xxyyzz
    assert got == {1, 6, 7}
    got = set()
    fi.hits("nothing here", got)
    assert got == set()
