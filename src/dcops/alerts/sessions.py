"""Console sessions kept on the server: the cookie only carries a random id.

The table holds the id's SHA-256 (a stolen database gives no live cookie). A session ends at
logout, when its user's password is reset, when the user is disabled or removed, and after
``max_age``; the console checks it on every request, so a copied cookie dies with it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, update

from dcops.alerts import schema
from dcops.alerts.db import reading
from dcops.alerts.timeutil import iso, now

MAX_AGE = timedelta(hours=12)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Create, check and revoke console sessions."""

    def __init__(self, engine: Engine, max_age: timedelta = MAX_AGE,
                 clock: Callable[[], datetime] = now) -> None:
        self.engine = engine
        self.max_age = max_age
        self.clock = clock

    def create(self, conn: Connection, username: str, client: str = "") -> str:
        """A new session id for the user (inside the login's transaction); old rows pruned."""
        t = self.clock()
        s = schema.console_sessions.c
        conn.execute(delete(schema.console_sessions)
                     .where(s.expires_at < iso(t - timedelta(days=1))))
        session_id = secrets.token_urlsafe(32)
        conn.execute(schema.console_sessions.insert().values(
            id_hash=_digest(session_id), username=username, created_at=iso(t),
            expires_at=iso(t + self.max_age), revoked_at=None, client=client[:64]))
        return session_id

    def role(self, username: str, session_id: str) -> str | None:
        """The user's role now if the session is live and the user enabled, else None."""
        if not session_id:
            return None
        s, u = schema.console_sessions.c, schema.users.c
        with reading(self.engine) as conn:
            r = conn.execute(
                select(u.role, u.disabled, s.expires_at, s.revoked_at)
                .select_from(schema.console_sessions.join(schema.users,
                                                          u.username == s.username))
                .where(s.id_hash == _digest(session_id), s.username == username)).first()
        if r is None or r.disabled or r.revoked_at is not None \
                or r.expires_at <= iso(self.clock()):
            return None
        return str(r.role)

    def revoke(self, session_id: str) -> bool:
        """End one session (logout); False when it was not live."""
        s = schema.console_sessions.c
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(schema.console_sessions)
                .where(s.id_hash == _digest(session_id), s.revoked_at.is_(None))
                .values(revoked_at=iso(self.clock()))).rowcount)

    def revoke_user(self, conn: Connection, username: str) -> int:
        """End every live session of the user (inside the caller's transaction)."""
        s = schema.console_sessions.c
        return int(conn.execute(
            update(schema.console_sessions)
            .where(s.username == username, s.revoked_at.is_(None))
            .values(revoked_at=iso(self.clock()))).rowcount)
