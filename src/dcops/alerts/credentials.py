"""How a CLI user proves to be a console user: API tokens, OS accounts mapped by an admin, and
the store owner (the database login that owns the tables, or the owner of the SQLite file).

A token reads ``dcops_<id>.<secret>``: the id finds the row, the secret's SHA-256 is compared in
constant time; the secret itself is never stored or audited.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text, update

from dcops.alerts import chain, schema
from dcops.alerts.db import reading
from dcops.alerts.timeutil import iso, now
from dcops.errors import AlertStoreError

PREFIX = "dcops_"
DEFAULT_TTL = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class Identity:
    """A console user as the CLI acts for it."""

    username: str
    role: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token without its secret."""

    id: str
    username: str
    label: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None


def _enabled(engine: Engine, username: str) -> Identity | None:
    u = schema.users.c
    with reading(engine) as conn:
        r = conn.execute(select(u.role, u.disabled).where(u.username == username)).first()
    return None if r is None or r.disabled else Identity(username, str(r.role))


class Tokens:
    """Issue, verify, list and revoke API tokens; issuing and revoking are audited."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = now) -> None:
        self.engine = engine
        self.clock = clock

    def issue(self, username: str, actor: str, label: str = "",
              ttl: timedelta | None = DEFAULT_TTL) -> str:
        """A new token for an existing user (the only time its secret is seen)."""
        if _enabled(self.engine, username) is None:
            raise AlertStoreError(f"user {username!r} does not exist or is disabled")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        t = self.clock()
        expires = iso(t + ttl) if ttl is not None else None
        with chain.writing(self.engine) as conn:
            conn.execute(schema.api_tokens.insert().values(
                id=token_id, username=username,
                secret_hash=hashlib.sha256(secret.encode()).hexdigest(), label=label[:100],
                created_at=iso(t), created_by=actor, expires_at=expires, revoked_at=None))
            chain.append(conn, actor, "token.issue", f"user:{username}",
                         {"token": token_id, "label": label[:100], "expires_at": expires or ""})
        return f"{PREFIX}{token_id}.{secret}"

    def verify(self, token: str) -> Identity | None:
        """The enabled user the token belongs to; None for a wrong, revoked or expired one."""
        body = token.strip().removeprefix(PREFIX)
        token_id, _, secret = body.partition(".")
        if not token_id or not secret:
            return None
        k = schema.api_tokens.c
        with reading(self.engine) as conn:
            r = conn.execute(select(schema.api_tokens).where(k.id == token_id)).first()
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if r is None or not hmac.compare_digest(digest, str(r.secret_hash)):
            return None
        if r.revoked_at is not None or (r.expires_at and r.expires_at <= iso(self.clock())):
            return None
        return _enabled(self.engine, str(r.username))

    def revoke(self, token_id: str, actor: str) -> None:
        """Revoke a token by id."""
        k = schema.api_tokens.c
        with chain.writing(self.engine) as conn:
            r = conn.execute(select(k.username).where(k.id == token_id,
                                                      k.revoked_at.is_(None))).first()
            if r is None:
                raise AlertStoreError(f"no live token with id {token_id!r}")
            conn.execute(update(schema.api_tokens).where(k.id == token_id)
                         .values(revoked_at=iso(self.clock())))
            chain.append(conn, actor, "token.revoke", f"user:{r.username}", {"token": token_id})

    def list(self, username: str | None = None) -> list[TokenInfo]:
        """Tokens (of one user, or all), newest first."""
        k = schema.api_tokens.c
        q = select(schema.api_tokens).order_by(k.created_at.desc())
        if username is not None:
            q = q.where(k.username == username)
        with reading(self.engine) as conn:
            return [TokenInfo(r.id, r.username, r.label, r.created_at, r.created_by,
                              r.expires_at, r.revoked_at) for r in conn.execute(q)]


class OsUsers:
    """Operating-system accounts (``name@host``) an admin mapped to console users."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def map(self, os_user: str, username: str, actor: str) -> None:
        """Map (or re-map) an OS account to a console user."""
        if _enabled(self.engine, username) is None:
            raise AlertStoreError(f"user {username!r} does not exist or is disabled")
        m = schema.os_user_map.c
        with chain.writing(self.engine) as conn:
            old = conn.execute(select(m.username).where(m.os_user == os_user)).first()
            if old is not None:
                conn.execute(update(schema.os_user_map).where(m.os_user == os_user)
                             .values(username=username, created_by=actor,
                                     created_at=iso(now())))
            else:
                conn.execute(schema.os_user_map.insert().values(
                    os_user=os_user, username=username, created_at=iso(now()),
                    created_by=actor))
            chain.append(conn, actor, "user.map_os_user", f"user:{username}",
                         {"os_user": os_user, "previous": old.username if old else ""})

    def unmap(self, os_user: str, actor: str) -> None:
        """Remove a mapping."""
        m = schema.os_user_map.c
        with chain.writing(self.engine) as conn:
            old = conn.execute(select(m.username).where(m.os_user == os_user)).first()
            if old is None:
                raise AlertStoreError(f"OS account {os_user!r} is not mapped")
            conn.execute(schema.os_user_map.delete().where(m.os_user == os_user))
            chain.append(conn, actor, "user.unmap_os_user", f"user:{old.username}",
                         {"os_user": os_user})

    def lookup(self, os_user: str) -> Identity | None:
        """The enabled console user this OS account is mapped to."""
        m = schema.os_user_map.c
        with reading(self.engine) as conn:
            r = conn.execute(select(m.username).where(m.os_user == os_user)).first()
        return _enabled(self.engine, str(r.username)) if r is not None else None


def store_owner(engine: Engine) -> str | None:
    """Who owns the store, when it is the caller: ``db:<login>`` or ``file:<uid>``; else None.

    PostgreSQL: the connection's login owns the ``users`` table or is a superuser. SQLite: this
    process's effective uid owns the database file, or is root.
    """
    if engine.dialect.name == "sqlite":
        path = engine.url.database or ""
        if path in ("", ":memory:"):
            return f"file:{os.geteuid()}"
        owner = Path(path).stat().st_uid
        return f"file:{os.geteuid()}" if os.geteuid() in (0, owner) else None
    if engine.dialect.name == "postgresql":
        with reading(engine) as conn:
            r = conn.execute(text(
                "SELECT current_user AS me, "
                "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, "
                "(SELECT tableowner FROM pg_tables WHERE tablename = 'users' "
                " AND schemaname = current_schema()) AS owner")).one()
        return f"db:{r.me}" if r.su or r.owner == r.me else None
    return None
