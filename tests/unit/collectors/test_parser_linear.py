"""Every parser entry point costs time linear in its input on hostile lines up to the 64 KiB cap.

Not a timed test: no absolute duration is asserted (speeds and ceilings per KiB are in
scripts/bench/parser_adversarial.py). What is compared is the CPU cost of one 64 KiB line with
that of 16 lines of 4 KiB of the same family on the same machine, a ratio that does not depend
on its speed: about 1 for a linear parser, 16 or more for a quadratic one (the netfilter
expression this replaced took 7.8 s for a line with 2,000 spaces, 1.4 s for 8 KiB of random
text). A case fails
only if it is both super-linear three times running and slower than 2 ms for the 64 KiB line, so a
loaded machine cannot make it fail and a backtracking parser cannot pass.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from dcops.collectors.parsers.adversarial import FAMILIES, entry_points, line

ENTRIES = entry_points()
BIG, SMALL = 64 * 1024, 4 * 1024
PARTS = BIG // SMALL
MAX_RATIO = 6.0  # linear: ~1; quadratic: ~16 and more
NOISE_FLOOR = 0.002  # seconds: a 64 KiB line parsed faster than this is fine whatever the ratio
# Seconds (wall clock) after which a measurement is stopped: backtracking would take hours.
# A real-time timer, because an armed CPU-time timer (ITIMER_PROF) makes this kernel count
# process CPU time in whole ticks.
BUDGET = 10.0


class OverBudgetError(Exception):
    """A parse ran longer than BUDGET seconds (the regex engine checks signals)."""


def _over_budget(signum: int, frame: object) -> None:
    raise OverBudgetError


def cpu(fn: Callable[[str], Any], lines: list[str]) -> float:
    """CPU seconds to parse the lines once; OverBudgetError past BUDGET."""
    gc.disable()
    old = signal.signal(signal.SIGALRM, _over_budget)
    signal.setitimer(signal.ITIMER_REAL, BUDGET)
    try:
        t = time.process_time()
        for ln in lines:
            fn(ln)
        return time.process_time() - t
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        gc.enable()


def superlinear(fn: Callable[[str], Any], family: str, head: str) -> str | None:
    """Why this family is parsed in super-linear time, or None."""
    big = [line(family, head, BIG)]
    small = [line(family, head, SMALL)] * PARTS
    assert len(big[0]) <= BIG and len(small[0]) <= SMALL
    why = None
    for _ in range(3):
        try:
            cpu(fn, small[:1])  # warm-up: caches, first-call costs
            b, s = cpu(fn, big), cpu(fn, small)
        except OverBudgetError:
            return f"{family}: more than {BUDGET:.0f} s for one line"
        if b < NOISE_FLOOR or b <= MAX_RATIO * s:
            return None
        why = f"{family}: one 64 KiB line {b * 1e3:.1f} ms, 16 x 4 KiB {s * 1e3:.2f} ms"
    return why


@pytest.mark.slow
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_parser_cost_is_linear_on_every_hostile_family(entry: str) -> None:
    head, fn = ENTRIES[entry]
    slow: list[str] = []
    for family in FAMILIES:
        if why := superlinear(fn, family, head):
            slow.append(why)
            if len(slow) == 3:  # enough to show it; a backtracking parser is slow to measure
                break
    assert not slow, f"{entry} is super-linear on: " + "; ".join(slow)


def test_the_families_reach_the_cap_and_hit_the_old_weak_spots() -> None:
    for name in FAMILIES:
        text = line(name, "", BIG)
        assert BIG - 64 <= len(text) <= BIG or name == "random_bytes", name
    assert line("in_10k_spaces", "", BIG).count(" " * 10_000) >= 6
    assert line("in_then_spaces", "", BIG).startswith("IN=   ")
    assert line("asa_user_quote", "", BIG).count("User '") > 10_000
