"""Shared rules for benchmark races (house rule: the peer gets the tuning its own docs recommend,
the order alternates, several rounds, median and spread printed, a ratio inside the noise is a tie).

    from fairrace import machine_line, orders, Stat, verdict

- `machine_line()`: load average and a CPU calibration figure (a fixed pure-Python work loop,
  timed); print it at the start and at the end of a run so a reader can see a busy machine.
- `orders(names, rounds)`: who goes first alternates per round (A,B / B,A / ...).
- `Stat`: median and min-max spread of one measurement over the rounds.
- `verdict(a, b)`: "A/B = 1.83x" only when the medians differ by more than the spread of
  either side (the two min-max ranges do not overlap); else "tie (inside the noise)".
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

CALIBRATION_LOOPS = 2_000_000


def calibration(loops: int = CALIBRATION_LOOPS) -> float:
    """Milliseconds for a fixed integer loop (lower = faster/idler CPU); best of three."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        x = 0
        for i in range(loops):
            x = (x + i * 7) % 1_000_003
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def machine_line(label: str = "machine") -> str:
    one, five, fifteen = os.getloadavg()
    return (f"{label}: load {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on "
            f"{os.cpu_count()} CPUs, calibration {calibration():.0f} ms "
            f"({CALIBRATION_LOOPS:,} loop iterations, best of 3)")


def orders(names: Sequence[str], rounds: int) -> list[list[str]]:
    """Per round, the order to run contenders in: reversed every other round."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"contender names must be distinct and non-empty, got {list(names)}")
    return [list(names) if r % 2 == 0 else list(reversed(names)) for r in range(rounds)]


@dataclass(frozen=True)
class Stat:
    """One contender's measurement over the rounds (higher is better unless said otherwise)."""

    name: str
    values: tuple[float, ...]
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"{self.name}: no values")

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        return self.hi - self.lo

    def line(self) -> str:
        return (f"{self.name:10s} median {self.median:10.1f} {self.unit}  "
                f"min-max {self.lo:.1f}-{self.hi:.1f}  "
                f"(spread {self.spread / self.median * 100 if self.median else 0:.0f}%, "
                f"{len(self.values)} rounds)")


def is_tie(a: Stat, b: Stat) -> bool:
    """True when the difference of medians is not wider than the spread (ranges overlap)."""
    diff = abs(a.median - b.median)
    return diff <= max(a.spread, b.spread) or (a.lo <= b.hi and b.lo <= a.hi)


def verdict(a: Stat, b: Stat) -> str:
    """'a/b = 1.83x (a faster)' or 'tie (inside the noise)'; a ratio is never printed for a tie.

    One round gives no spread: no ratio either (the noise is unknown, not zero).
    """
    if min(len(a.values), len(b.values)) < 2:
        return f"{a.name}/{b.name}: no ratio (one round: the spread is unknown; run more rounds)"
    if is_tie(a, b):
        return (f"{a.name}/{b.name}: tie (inside the noise: medians differ by "
                f"{abs(a.median - b.median):.1f}, spread up to {max(a.spread, b.spread):.1f})")
    if b.median == 0:
        return f"{a.name}/{b.name}: {b.name} median is 0, no ratio"
    return f"{a.name}/{b.name} = {a.median / b.median:.2f}x (medians, ranges do not overlap)"
