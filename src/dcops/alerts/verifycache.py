"""The console's audit-trail verification: incremental between full walks.

A full walk of a 100,000-record trail takes seconds; the `/audit` page must answer in well under
one. So the console keeps where its last walk stopped (last record and its hash, and the walk's
state there, `trailverify.WalkPoint`) and on each view walks only the records appended since. The
records before that point are not re-read: an alteration of one of them is found by the next
full walk, which runs
  - on demand (`full=True`: the page's "verify everything now" link),
  - in the background when the last full walk is older than `full_every` (default 1 hour),
  - always in `dcops alerts trail verify`, which does not use this cache at all.
The page says when the last full walk ran and up to which record it went.

The first full walk (there is no point to start from yet) runs in the background too: started
when the console starts (`warm`) or by the first view, which waits for it `first_wait` seconds
(0.5) at most and otherwise answers "verification running" at once; the next view has the result.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from dcops.alerts.chain import VerifyResult
from dcops.alerts.trail import trail_of
from dcops.alerts.trailverify import WalkPoint, verify_from

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedVerify:
    """A verification result and how it was reached (`result` None: the first full walk is still
    running; `pending`)."""

    result: VerifyResult | None
    full: bool  # this result came from a full walk
    full_at: datetime | None  # when the last full walk finished
    full_through: int  # the last record that full walk checked
    incremental_from: int | None  # records after this one were walked now (None: full)
    full_running: bool  # a background full walk is under way

    @property
    def pending(self) -> bool:
        """No result yet: the first full walk has not finished."""
        return self.result is None


class TrailVerifier:
    """Incremental verification of one store's trail for the console (thread-safe)."""

    def __init__(self, engine: Engine, full_every: timedelta = timedelta(hours=1),
                 first_wait: float = 0.5) -> None:
        self.engine = engine
        self.full_every = full_every
        self.first_wait = first_wait
        self._lock = threading.Lock()
        self._walk_lock = threading.Lock()  # one foreground walk at a time
        self._point: WalkPoint | None = None
        self._full_at: datetime | None = None
        self._full_through = 0
        self._running: threading.Thread | None = None
        self._last_full: VerifyResult | None = None  # what the last background full walk found

    def _walk(self, start: WalkPoint | None) -> tuple[VerifyResult, WalkPoint]:
        with self.engine.connect() as conn:
            return verify_from(conn, trail_of(self.engine), start)

    def _full(self) -> VerifyResult:
        result, point = self._walk(None)
        self._keep(point)
        return result

    def _keep(self, point: WalkPoint) -> None:
        with self._lock:
            if point.full:  # always taken: what it found before its end must not be lost
                self._point = point
                self._full_at = datetime.now(UTC)
                self._full_through = point.seq
            elif self._point is None or point.seq >= self._point.seq:
                self._point = point

    def _background(self) -> None:
        try:
            result = self._full()
            with self._lock:
                self._last_full = result
        except Exception:  # the next view walks in front and shows why; the log keeps it too
            log.exception("background verification of the audit trail failed")
        finally:
            with self._lock:
                self._running = None

    def _start_background(self) -> threading.Thread:
        """The background full walk, started if none is running (call with `_lock` held)."""
        if self._running is None:
            self._running = threading.Thread(target=self._background, daemon=True,
                                             name="dcops-trail-full-verify")
            self._running.start()
        return self._running

    def warm(self) -> None:
        """Start the first full walk now (the console calls it as it starts)."""
        with self._lock:
            if self._point is None:
                self._start_background()

    def _first(self) -> CachedVerify | None:
        """Before any walk finished: wait `first_wait` for the background full walk; its result,
        or a pending answer; None when a point exists (the caller walks from it)."""
        with self._lock:
            if self._point is not None:
                return None
            thread = self._start_background()
        thread.join(self.first_wait)
        with self._lock:
            if self._point is None and not thread.is_alive():
                return None  # the walk failed: walked again in the foreground, which says why
            if self._point is None or self._last_full is None:
                return CachedVerify(None, False, None, 0, None, True)
            return CachedVerify(self._last_full, True, self._full_at, self._full_through, None,
                                self._running is not None)

    def verify(self, full: bool = False) -> CachedVerify:
        """Verify: a full walk when asked, else only the records new since the last walk (a
        background full walk when the last is older than `full_every`; before the first one
        finished, `_first`)."""
        if not full and (first := self._first()) is not None:
            return first
        with self._walk_lock:
            with self._lock:
                start = None if full else self._point
            if start is None:
                result = self._full()
                incremental_from = None
            else:
                result, point = self._walk(start)
                self._keep(point)
                incremental_from = None if point.full else start.seq
        with self._lock:
            stale = self._full_at is None or datetime.now(UTC) - self._full_at > self.full_every
            if stale and incremental_from is not None:
                self._start_background()
            return CachedVerify(result, incremental_from is None, self._full_at,
                                self._full_through, incremental_from, self._running is not None)
