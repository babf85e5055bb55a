"""Console users: argon2-hashed passwords and one role each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select, update

from dcops.alerts import audit, schema
from dcops.alerts.timeutil import iso, now
from dcops.errors import AlertStoreError

ROLES = ("analyst", "engineer", "auditor", "admin")
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class User:
    """A console user (the hash never leaves the store)."""

    username: str
    role: str
    disabled: bool
    created_at: str


class Users:
    """User administration on the store's engine; every change is audited."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, username: str, password: str, role: str, actor: str) -> None:
        """Create a user (or replace password and role of an existing one)."""
        if role not in ROLES:
            raise AlertStoreError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise AlertStoreError("password must have at least 8 characters")
        if not username or not all(c.isalnum() or c in "._-" for c in username):
            raise AlertStoreError(f"invalid user name {username!r} (letters, digits, . _ -)")
        h = _hasher.hash(password)
        u = schema.users.c
        with audit.writing(self.engine) as conn:
            exists = conn.execute(select(u.username).where(u.username == username)).first()
            if exists:
                conn.execute(update(schema.users).where(u.username == username)
                             .values(password_hash=h, role=role, disabled=0))
            else:
                conn.execute(schema.users.insert().values(
                    username=username, password_hash=h, role=role, disabled=0,
                    created_at=iso(now())))
            audit.append(conn, actor, "user.update" if exists else "user.add",
                         f"user:{username}", {"role": role})

    def set_role(self, username: str, role: str, actor: str) -> None:
        """Change a user's role, keeping the password (open sessions get the new role at once)."""
        if role not in ROLES:
            raise AlertStoreError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
        u = schema.users.c
        with audit.writing(self.engine) as conn:
            old = conn.execute(select(u.role).where(u.username == username)).first()
            if old is None:
                raise AlertStoreError(f"user {username!r} does not exist")
            conn.execute(update(schema.users).where(u.username == username).values(role=role))
            audit.append(conn, actor, "user.role", f"user:{username}",
                         {"from": old.role, "to": role})

    def set_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable or re-enable a user."""
        u = schema.users.c
        with audit.writing(self.engine) as conn:
            n = conn.execute(update(schema.users).where(u.username == username)
                             .values(disabled=int(disabled))).rowcount
            if not n:
                raise AlertStoreError(f"user {username!r} does not exist")
            audit.append(conn, actor, "user.disable" if disabled else "user.enable",
                         f"user:{username}", {})

    def remove(self, username: str, actor: str) -> None:
        """Delete a user."""
        with audit.writing(self.engine) as conn:
            n = conn.execute(delete(schema.users)
                             .where(schema.users.c.username == username)).rowcount
            if not n:
                raise AlertStoreError(f"user {username!r} does not exist")
            audit.append(conn, actor, "user.remove", f"user:{username}", {})

    def list_users(self) -> list[User]:
        """All users."""
        with self.engine.connect() as conn:
            return [User(r.username, r.role, bool(r.disabled), r.created_at) for r in
                    conn.execute(select(schema.users).order_by(schema.users.c.username))]

    def session_check(self, username: str) -> tuple[str, str] | None:
        """(role, password stamp) of an enabled user, None for a disabled or unknown one.

        The stamp is derived from the password hash, so a session made before a password reset
        no longer matches (the console checks it on every request).
        """
        u = schema.users.c
        with self.engine.connect() as conn:
            r = conn.execute(select(u.role, u.disabled, u.password_hash)
                             .where(u.username == username)).first()
        if r is None or r.disabled:
            return None
        return str(r.role), hashlib.sha256(r.password_hash.encode()).hexdigest()[:32]

    def login(self, username: str, password: str, client: str = "") -> User | None:
        """Authenticate and record the outcome in the audit trail (user.login, user.login_failed).

        A failed attempt is attributed to the name that was tried (cut to 64 printable
        characters), with the reason and the client address, as sshd and Wazuh log them.
        """
        user = self.authenticate(username, password)
        name = "".join(c for c in username if c.isprintable())[:64] or "-"
        detail: dict[str, str] = {"client": client[:64]} if client else {}
        if user is None:
            with self.engine.connect() as conn:
                r = conn.execute(select(schema.users.c.disabled)
                                 .where(schema.users.c.username == username)).first()
            detail["reason"] = ("unknown user" if r is None else
                                "disabled" if r.disabled else "wrong password")
        else:
            detail["role"] = user.role
        with audit.writing(self.engine) as conn:
            audit.append(conn, name, "user.login" if user else "user.login_failed",
                         f"user:{name}", detail)
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches and the account is enabled, else None."""
        with self.engine.connect() as conn:
            r = conn.execute(select(schema.users)
                             .where(schema.users.c.username == username)).first()
        if r is None or r.disabled:
            _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
            return None
        try:
            _hasher.verify(r.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return User(r.username, r.role, False, r.created_at)
