"""The console's audit-trail verification: incremental between full walks, never slow in front.

A full walk of a 100,000-record trail takes seconds; the `/audit` page must answer in well under
one. So the console keeps where its last walk stopped (last record and its hash, and the walk's
state there, `trailverify.WalkPoint`) and on each view walks only the records appended since. The
records before that point are not re-read: an alteration of one of them is found by the next
full walk, which runs
  - on demand (`full=True`: the page's "verify everything now" link),
  - in the background when the last full walk is older than `full_every` (default 1 hour),
  - always in `dcops alerts trail verify`, which does not use this cache at all.
The page says when the last full walk ran and up to which record it went.

No view waits for a long walk:
  - the first full walk (no point to start from yet) runs in the background, started when the
    console starts (`warm`) or by the first view, which waits `first_wait` seconds (0.3) at most
    and otherwise answers "verification running"; the next view has the result;
  - when more than `front_limit` records (20,000) arrived since the last walk (an outage's worth,
    or a day nobody opened the page), they are walked in the background and the view shows the
    last result with how many newer records are being verified.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from dcops.alerts import schema
from dcops.alerts.chain import VerifyResult
from dcops.alerts.db import reading
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
    behind: int = 0  # newer records than this result, being walked in the background

    @property
    def pending(self) -> bool:
        """No result yet: the first full walk has not finished."""
        return self.result is None


class TrailVerifier:
    """Incremental verification of one store's trail for the console (thread-safe)."""

    def __init__(self, engine: Engine, full_every: timedelta = timedelta(hours=1),
                 first_wait: float = 0.3, front_limit: int = 20_000) -> None:
        self.engine = engine
        self.full_every = full_every
        self.first_wait = first_wait
        self.front_limit = front_limit
        self._lock = threading.Lock()
        self._walk_lock = threading.Lock()  # one foreground walk at a time
        self._point: WalkPoint | None = None
        self._full_at: datetime | None = None
        self._full_through = 0
        self._last: CachedVerify | None = None  # the answer of the last finished walk
        self._running: threading.Thread | None = None  # one background walk at a time
        self._running_full = False  # ... and whether it is a full one

    def _walk(self, start: WalkPoint | None) -> tuple[VerifyResult, WalkPoint]:
        with reading(self.engine) as conn:
            return verify_from(conn, trail_of(self.engine), start)

    def _head(self) -> int:
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.coalesce(func.max(schema.audit.c.seq), 0)))
                       .scalar_one())

    def _done(self, start: WalkPoint | None, result: VerifyResult, point: WalkPoint
              ) -> CachedVerify:
        """Keep a finished walk's point and answer (call with `_lock` held)."""
        if point.full:  # always taken: what it found before its end must not be lost
            self._point = point
            self._full_at = datetime.now(UTC)
            self._full_through = point.seq
        elif self._point is None or point.seq >= self._point.seq:
            self._point = point
        incremental_from = None if point.full or start is None else start.seq
        answer = CachedVerify(result, incremental_from is None, self._full_at,
                              self._full_through, incremental_from, self._running_full)
        if self._last is None or self._point is point:
            self._last = answer
        return answer

    def _background(self, start: WalkPoint | None) -> None:
        try:
            result, point = self._walk(start)
            with self._lock:
                self._done(start, result, point)
        except Exception:  # the next view walks in front and shows why; the log keeps it too
            log.exception("background verification of the audit trail failed")
        finally:
            with self._lock:
                self._running = None
                self._running_full = False

    def _start_background(self, start: WalkPoint | None) -> threading.Thread:
        """A background walk from `start` (None: full), unless one runs (call with `_lock`)."""
        if self._running is None:
            self._running_full = start is None
            self._running = threading.Thread(target=self._background, args=(start,),
                                             daemon=True, name="dcops-trail-verify")
            self._running.start()
        return self._running

    def warm(self) -> None:
        """Start the first full walk now (the console calls it as it starts)."""
        with self._lock:
            if self._point is None:
                self._start_background(None)

    def _first(self) -> CachedVerify | None:
        """Before any walk finished: wait `first_wait` for the background full walk; its answer,
        or a pending one; None when a point exists (the caller walks from it)."""
        with self._lock:
            if self._point is not None:
                return None
            thread = self._start_background(None)
        thread.join(self.first_wait)
        with self._lock:
            if self._point is None and not thread.is_alive():
                return None  # the walk failed: walked again in the foreground, which says why
            if self._point is None or self._last is None:
                return CachedVerify(None, False, None, 0, None, True)
            return dataclasses.replace(self._last, full_running=self._running_full)

    def _far_behind(self) -> CachedVerify | None:
        """More than `front_limit` new records: walked in the background; the last answer with
        how many records are newer. None when the caller may walk them in front."""
        with self._lock:
            point, last = self._point, self._last
        if point is None or last is None:
            return None
        behind = self._head() - point.seq
        if behind <= self.front_limit:
            return None
        with self._lock:
            self._start_background(self._point)
            return dataclasses.replace(last, behind=behind, full_running=self._running_full)

    def verify(self, full: bool = False) -> CachedVerify:
        """Verify: a full walk when asked, else only the records new since the last walk (a
        background full walk when the last is older than `full_every`; before the first one
        finished, `_first`; when many records are new, `_far_behind`)."""
        if not full:
            early = self._first() or self._far_behind()
            if early is not None:
                return early
        with self._walk_lock:
            with self._lock:
                start = None if full else self._point
            result, point = self._walk(start)
            with self._lock:
                answer = self._done(start, result, point)
        with self._lock:
            stale = self._full_at is None or datetime.now(UTC) - self._full_at > self.full_every
            if stale and not answer.full:
                self._start_background(None)
            return dataclasses.replace(answer, full_running=self._running_full)
