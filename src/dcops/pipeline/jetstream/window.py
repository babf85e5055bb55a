"""The event times of what was fetched last, so an ack knows the newest time it covers."""

from __future__ import annotations

import bisect


class FetchWindow:
    """A contiguous run of fetched positions (lo, hi] with each event's time (bounded)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.lo = self.hi = 0
        self.valid = False
        self._seqs: list[int] = []
        self._ts: list[float] = []

    def add(self, position: int, batch: list[tuple[int, float]]) -> None:
        """Record a fetch of everything in (position, batch[-1]] (a new run if not contiguous)."""
        if not batch:
            return
        if not (self.valid and position == self.hi):
            self.lo, self.valid = position, True
            self._seqs, self._ts = [], []
        self._seqs += [s for s, _ in batch]
        self._ts += [t for _, t in batch]
        self.hi = batch[-1][0]
        extra = len(self._seqs) - self.capacity
        if extra > 0:
            self.lo = self._seqs[extra - 1]
            del self._seqs[:extra], self._ts[:extra]

    def covers(self, old: int, new: int) -> bool:
        """True when every position in (old, new] was fetched in this run."""
        return self.valid and self.lo <= old and new <= self.hi

    def newest(self, old: int, new: int) -> float | None:
        """The newest event time in (old, new] (call only when `covers`)."""
        i = bisect.bisect_right(self._seqs, old)
        j = bisect.bisect_right(self._seqs, new)
        return max(self._ts[i:j]) if j > i else None
