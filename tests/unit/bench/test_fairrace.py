"""fairrace: the shared race rules of scripts/bench (alternating order, spread, tie verdict)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "bench"))

from fairrace import Stat, calibration, is_tie, machine_line, orders, verdict


def test_order_alternates_every_round() -> None:
    got = orders(["dcops", "exporter"], 7)
    assert got[0] == ["dcops", "exporter"] and got[1] == ["exporter", "dcops"]
    assert sum(1 for o in got if o[0] == "dcops") == 4
    assert sum(1 for o in got if o[0] == "exporter") == 3


@pytest.mark.parametrize(("names", "rounds", "why"), [
    (["a", "a"], 3, "distinct"), ([], 3, "distinct"), (["a", "b"], 0, "rounds")])
def test_order_rejects_bad_input(names: list[str], rounds: int, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        orders(names, rounds)


def test_stat_median_and_spread() -> None:
    s = Stat("x", (5.0, 1.0, 3.0, 9.0, 4.0), "dev/s")
    assert s.median == 4.0 and s.lo == 1.0 and s.hi == 9.0 and s.spread == 8.0
    assert "median" in s.line() and "1.0-9.0" in s.line()


def test_clear_difference_prints_a_ratio() -> None:
    a = Stat("dcops", (300.0, 310.0, 305.0, 298.0, 302.0, 307.0, 301.0))
    b = Stat("exporter", (150.0, 155.0, 149.0, 152.0, 151.0, 153.0, 150.0))
    assert not is_tie(a, b)
    v = verdict(a, b)
    assert "2.0" in v and "x" in v and "tie" not in v


def test_overlapping_ranges_are_a_tie_without_a_ratio() -> None:
    a = Stat("dcops", (100.0, 180.0, 120.0, 110.0, 170.0, 115.0, 160.0))
    b = Stat("exporter", (95.0, 105.0, 100.0, 98.0, 102.0, 99.0, 101.0))  # inside a's range
    assert is_tie(a, b)
    v = verdict(a, b)
    assert "tie (inside the noise" in v and "x (" not in v


def test_difference_smaller_than_spread_is_a_tie_even_without_overlap_rule() -> None:
    # medians differ by 10, a's spread is 40: the difference is inside the noise
    a = Stat("a", (90.0, 110.0, 130.0))
    b = Stat("b", (100.0, 100.0, 100.0))
    assert is_tie(a, b)


def test_one_round_gives_no_ratio() -> None:
    v = verdict(Stat("a", (300.0,)), Stat("b", (100.0,)))
    assert "no ratio" in v and "3.00x" not in v


def test_empty_stat_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        Stat("x", ())


def test_calibration_and_machine_line() -> None:
    assert calibration(10_000) > 0
    line = machine_line("start")
    assert line.startswith("start: load ") and "calibration" in line
