"""Login throttling per account and per source address: exponential back-off, then a lock.

Each attempt is counted before the password is checked (so parallel guesses meet the back-off
too) and forgiven when it succeeds. Reaching the limit locks the account or the address for
``lock`` (doubled for each further lock, at most ``max_lock``) and writes ONE audit record;
attempts refused while backing off or locked are neither checked, counted nor audited, so a
guesser cannot flood the trail. A lock ends by time or by an admin (``unlock``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from dcops.alerts import chain, schema
from dcops.alerts.db import reading
from dcops.alerts.timeutil import iso, now, parse

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Limits (console.login in the alerts config); the defaults suit a SOC console."""

    max_failures: int = 5                 # per account, then the account is locked
    max_failures_per_address: int = 20    # per source address, then the address is locked
    backoff: timedelta = timedelta(seconds=1)      # wait after a failure, doubled per failure
    max_backoff: timedelta = timedelta(minutes=1)
    lock: timedelta = timedelta(minutes=15)        # first lock; doubled per consecutive lock
    max_lock: timedelta = timedelta(hours=24)

    def limit(self, key: str) -> int:
        """Failures allowed on this key before it locks."""
        return self.max_failures if key.startswith("user:") else self.max_failures_per_address

    def free(self, key: str) -> int:
        """Failures on this key that cost no waiting (an office NAT gets an account's worth)."""
        return 0 if key.startswith("user:") else self.max_failures

    def delay(self, key: str, failures: int) -> timedelta:
        """How long after the last failure the next attempt on this key may come."""
        over = failures - self.free(key)
        if over <= 0:
            return timedelta(0)
        wait: timedelta = self.backoff * (2 ** min(over - 1, 30))
        return min(wait, self.max_backoff)

    def lock_for(self, locks: int) -> timedelta:
        """Length of the next lock after `locks` earlier consecutive ones."""
        length: timedelta = self.lock * (2 ** min(locks, 30))
        return min(length, self.max_lock)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An attempt refused without checking the password."""

    key: str                # user:NAME or addr:IP
    locked: bool            # False: only backing off
    retry_after: float      # seconds


@dataclass(frozen=True, slots=True)
class Lock:
    """A current lock, as the users page and `dcops alerts users locks` show it."""

    key: str
    until: str
    locks: int
    last_client: str


def keys(username: str, client: str) -> list[str]:
    """The throttle keys of an attempt: the account tried and the source address."""
    name = "".join(c for c in username if c.isprintable())[:64] or "-"
    out = [f"user:{name}"]
    if client:
        out.append(f"addr:{client[:64]}")
    return out


class LoginThrottle:
    """Counts and locks in table login_throttle, shared by every console and CLI process."""

    def __init__(self, engine: Engine, policy: ThrottlePolicy | None = None,
                 clock: Clock = now) -> None:
        self.engine = engine
        self.policy = policy or ThrottlePolicy()
        self.clock = clock

    def begin(self, username: str, client: str) -> Refusal | None:
        """Refuse the attempt (locked, or too soon after a failure) or count it as a failure."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    return self._begin(conn, keys(username, client), client)
            except IntegrityError:  # two first attempts on a new key: the retry sees the row
                if attempt == 2:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def _begin(self, conn: Connection, ks: list[str], client: str) -> Refusal | None:
        t = self.clock()
        rows = {k: self._row(conn, k) for k in ks}
        for k, r in rows.items():
            if r is None:
                continue
            if r.locked_until and parse(r.locked_until) > t:
                return Refusal(k, True, (parse(r.locked_until) - t).total_seconds())
            if r.last_failure_at:
                ready = parse(r.last_failure_at) + self.policy.delay(k, self._failures(r, t))
                if ready > t:
                    return Refusal(k, False, (ready - t).total_seconds())
        c = schema.login_throttle.c
        for k, r in rows.items():
            if r is None:
                conn.execute(schema.login_throttle.insert().values(
                    key=k, failures=1, last_failure_at=iso(t), locked_until=None, locks=0,
                    last_client=client[:64]))
            else:
                conn.execute(update(schema.login_throttle).where(c.key == k).values(
                    failures=self._failures(r, t) + 1, last_failure_at=iso(t),
                    locks=self._locks(r, t), last_client=client[:64]))
        return None

    def _row(self, conn: Connection, key: str) -> Any:
        c = schema.login_throttle.c
        return conn.execute(select(schema.login_throttle).where(c.key == key)
                            .with_for_update()).first()

    def _failures(self, r: Any, t: datetime) -> int:
        """Failures still remembered: a quiet period as long as a lock forgives them."""
        if r.last_failure_at and t - parse(r.last_failure_at) > self.policy.lock:
            return 0
        return int(r.failures)

    def _locks(self, r: Any, t: datetime) -> int:
        if r.last_failure_at and t - parse(r.last_failure_at) > self.policy.max_lock:
            return 0
        return int(r.locks)

    def failed(self, conn: Connection, username: str, client: str, reason: str) -> list[str]:
        """After a wrong password (inside a chain.writing transaction): lock keys at the limit.

        Returns the keys locked now; each lock is one audit record.
        """
        t = self.clock()
        locked: list[str] = []
        c = schema.login_throttle.c
        for k in keys(username, client):
            r = self._row(conn, k)
            if r is None or int(r.failures) < self.policy.limit(k):
                continue
            if r.locked_until and parse(r.locked_until) > t:
                continue
            until = t + self.policy.lock_for(int(r.locks))
            conn.execute(update(schema.login_throttle).where(c.key == k).values(
                failures=0, locked_until=iso(until), locks=int(r.locks) + 1))
            kind, _, what = k.partition(":")
            chain.append(conn, "dcops", "user.locked" if kind == "user" else "address.locked",
                         f"{'user' if kind == 'user' else 'address'}:{what}",
                         {"failures": int(r.failures), "until": iso(until),
                          "lock": int(r.locks) + 1, "client": client[:64],
                          "last_reason": reason})
            locked.append(k)
        return locked

    def succeeded(self, conn: Connection, username: str, client: str) -> int:
        """After a right password: the account is forgiven, the address one failure less.

        Returns the account's failures before this success (the login record carries them).
        """
        c = schema.login_throttle.c
        user_key, *addr = keys(username, client)
        r = self._row(conn, user_key)
        before = max(int(r.failures) - 1, 0) if r is not None else 0
        conn.execute(delete(schema.login_throttle).where(c.key == user_key))
        for k in addr:
            a = self._row(conn, k)
            if a is not None:
                conn.execute(update(schema.login_throttle).where(c.key == k)
                             .values(failures=max(int(a.failures) - 1, 0)))
        return before

    def unlock(self, key: str, actor: str) -> bool:
        """End a lock and forget the failures (admin); False when the key was not throttled."""
        c = schema.login_throttle.c
        with chain.writing(self.engine) as conn:
            r = self._row(conn, key)
            if r is None:
                return False
            conn.execute(delete(schema.login_throttle).where(c.key == key))
            kind, _, what = key.partition(":")
            chain.append(conn, actor, "user.unlock" if kind == "user" else "address.unlock",
                         f"{'user' if kind == 'user' else 'address'}:{what}",
                         {"was_locked_until": r.locked_until or "", "failures": int(r.failures)})
        return True

    def locks(self) -> list[Lock]:
        """Keys locked now."""
        t = iso(self.clock())
        c = schema.login_throttle.c
        with reading(self.engine) as conn:
            return [Lock(r.key, r.locked_until, int(r.locks), r.last_client) for r in
                    conn.execute(select(schema.login_throttle)
                                 .where(c.locked_until > t).order_by(c.key))]
