"""Numbered canaries: what was sent on which path, and how to find them again in stored events.

A canary carries the marker `FZC-<path>-<8 digits>-END` somewhere in its raw input; hostile
inputs never contain `FZC-` (random bytes could, with odds below 1e-12 for the whole campaign).
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

MARK_RX = re.compile(r"FZC-([a-z0-9_]+)-(\d{8})-END")
MARK_RXB = re.compile(rb"FZC-([a-z0-9_]+)-(\d{8})-END")


def marker(path: str, n: int) -> str:
    """The marker of canary `n` on `path`."""
    return f"FZC-{path}-{n:08d}-END"


@dataclass
class Ledger:
    """Canaries sent (by path), canaries the kernel dropped, hostile inputs sent (by kind)."""

    sent: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    kernel_dropped: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    unsendable: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    hostile: Counter[str] = field(default_factory=Counter)  # "<collector>/<kind>" -> count
    notes: list[str] = field(default_factory=list)
    aborted: dict[str, str] = field(default_factory=dict)  # phase -> why it stopped early
    where: dict[tuple[str, int], str] = field(default_factory=dict)  # how a canary was sent
    _next: Counter[str] = field(default_factory=Counter)
    _t0: dict[str, float] = field(default_factory=dict)

    def canary(self, path: str) -> tuple[int, str]:
        """A fresh number and its marker; it counts as sent once `confirm` is called."""
        self._next[path] += 1
        n = self._next[path]
        return n, marker(path, n)

    def confirm(self, path: str, n: int) -> None:
        """Canary `n` on `path` left this process (sendto/send returned)."""
        self.sent[path].append(n)

    def tick(self, phase: str, i: int, count: int) -> None:
        """Print progress at every tenth of a phase (long runs on a shared machine)."""
        if i == 1:
            self._t0[phase] = time.monotonic()
        if count >= 10_000 and i % (count // 10) == 0:
            print(f"    {phase}: {i:,} / {count:,} in {time.monotonic() - self._t0[phase]:.0f} s",
                  flush=True)

    def abort(self, phase: str, why: str) -> None:
        """A phase stopped before sending everything (collector unresponsive or gone)."""
        self.aborted.setdefault(phase, why)

    def hostile_total(self, collector: str = "") -> int:
        """Hostile inputs sent (to one collector, or to all)."""
        return sum(v for k, v in self.hostile.items()
                   if not collector or k.split("/", 1)[0] == collector)
