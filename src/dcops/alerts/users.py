"""Console users: argon2-hashed passwords and one role each; logins throttled and audited."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, select, update

from dcops.alerts import chain, schema
from dcops.alerts.db import reading
from dcops.alerts.sessions import Sessions
from dcops.alerts.throttle import LoginThrottle
from dcops.alerts.timeutil import iso, now
from dcops.errors import AlertStoreError
from dcops.model.rbac import ROLES

__all__ = ["ROLES", "LoginResult", "User", "Users"]

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class User:
    """A console user (the hash never leaves the store)."""

    username: str
    role: str
    disabled: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Outcome of a login: the user, or a refusal (``retry_after`` > 0: throttled, unchecked)."""

    user: User | None
    retry_after: float = 0.0
    locked: bool = False
    session: str = ""  # a new console session id, when one was asked for


class Users:
    """User administration on the store's engine; every change is audited."""

    def __init__(self, engine: Engine, throttle: LoginThrottle | None = None,
                 sessions: Sessions | None = None) -> None:
        self.engine = engine
        self.throttle = throttle or LoginThrottle(engine)
        self.sessions = sessions or Sessions(engine)

    @staticmethod
    def _check(username: str, password: str, role: str) -> None:
        if role not in ROLES:
            raise AlertStoreError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise AlertStoreError("password must have at least 8 characters")
        if not username or not all(c.isalnum() or c in "._-" for c in username):
            raise AlertStoreError(f"invalid user name {username!r} (letters, digits, . _ -)")

    def add(self, username: str, password: str, role: str, actor: str) -> None:
        """Create a user (or reset password and role of an existing one: its sessions end)."""
        self._check(username, password, role)
        h = _hasher.hash(password)
        with chain.writing(self.engine) as conn:
            self._add_in(conn, username, h, role, actor, {"role": role})

    def bootstrap(self, username: str, password: str, actor: str) -> None:
        """Create the first admin; refused once any user exists (then an admin adds users)."""
        self._check(username, password, "admin")
        h = _hasher.hash(password)
        with chain.writing(self.engine) as conn:
            if conn.execute(select(schema.users.c.username).limit(1)).first() is not None:
                raise AlertStoreError("the store already has users: user administration needs "
                                      "an admin's identity (--token-file, or an OS account "
                                      "mapped to an admin)")
            self._add_in(conn, username, h, "admin", actor, {"role": "admin", "bootstrap": True})

    def _add_in(self, conn: Connection, username: str, h: str, role: str, actor: str,
                detail: dict[str, object]) -> None:
        u = schema.users.c
        exists = conn.execute(select(u.username).where(u.username == username)).first()
        if exists:
            conn.execute(update(schema.users).where(u.username == username)
                         .values(password_hash=h, role=role, disabled=0))
            ended = self.sessions.revoke_user(conn, username)
            if ended:
                detail = {**detail, "sessions_ended": ended}
        else:
            conn.execute(schema.users.insert().values(
                username=username, password_hash=h, role=role, disabled=0,
                created_at=iso(now())))
        chain.append(conn, actor, "user.update" if exists else "user.add",
                     f"user:{username}", detail)

    def set_role(self, username: str, role: str, actor: str) -> None:
        """Change a user's role, keeping the password (open sessions get the new role at once)."""
        if role not in ROLES:
            raise AlertStoreError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
        u = schema.users.c
        with chain.writing(self.engine) as conn:
            old = conn.execute(select(u.role).where(u.username == username)).first()
            if old is None:
                raise AlertStoreError(f"user {username!r} does not exist")
            conn.execute(update(schema.users).where(u.username == username).values(role=role))
            chain.append(conn, actor, "user.role", f"user:{username}",
                         {"from": old.role, "to": role})

    def set_disabled(self, username: str, disabled: bool, actor: str) -> None:
        """Disable (its sessions end) or re-enable a user."""
        u = schema.users.c
        with chain.writing(self.engine) as conn:
            n = conn.execute(update(schema.users).where(u.username == username)
                             .values(disabled=int(disabled))).rowcount
            if not n:
                raise AlertStoreError(f"user {username!r} does not exist")
            if disabled:
                self.sessions.revoke_user(conn, username)
            chain.append(conn, actor, "user.disable" if disabled else "user.enable",
                         f"user:{username}", {})

    def remove(self, username: str, actor: str) -> None:
        """Delete a user (and end its sessions)."""
        with chain.writing(self.engine) as conn:
            n = conn.execute(delete(schema.users)
                             .where(schema.users.c.username == username)).rowcount
            if not n:
                raise AlertStoreError(f"user {username!r} does not exist")
            self.sessions.revoke_user(conn, username)
            chain.append(conn, actor, "user.remove", f"user:{username}", {})

    def list_users(self) -> list[User]:
        """All users."""
        with reading(self.engine) as conn:
            return [User(r.username, r.role, bool(r.disabled), r.created_at) for r in
                    conn.execute(select(schema.users).order_by(schema.users.c.username))]

    def login(self, username: str, password: str, client: str = "",
              session: bool = False) -> LoginResult:
        """Authenticate through the throttle; with `session`, open a console session.

        Attempts refused by the throttle never reach the password check. A success is one audit
        record (``user.login``, with the failures before it); failures are counted, not audited
        one by one: reaching the limit locks the account or address with one ``user.locked`` or
        ``address.locked`` record.
        """
        refusal = self.throttle.begin(username, client)
        if refusal is not None:
            return LoginResult(None, max(refusal.retry_after, 0.001), refusal.locked)
        user = self.authenticate(username, password)
        name = "".join(c for c in username if c.isprintable())[:64] or "-"
        with chain.writing(self.engine) as conn:
            if user is None:
                r = conn.execute(select(schema.users.c.disabled)
                                 .where(schema.users.c.username == username)).first()
                reason = ("unknown user" if r is None else
                          "disabled" if r.disabled else "wrong password")
                self.throttle.failed(conn, username, client, reason)
                return LoginResult(None)
            before = self.throttle.succeeded(conn, username, client)
            detail: dict[str, object] = {"role": user.role}
            if client:
                detail["client"] = client[:64]
            if before:
                detail["failures_before"] = before
            sid = self.sessions.create(conn, user.username, client) if session else ""
            chain.append(conn, name, "user.login", f"user:{name}", detail)
        return LoginResult(user, session=sid)

    def logout(self, username: str, session_id: str) -> None:
        """End the session on the server (audited when it was live)."""
        if self.sessions.revoke(session_id):
            with chain.writing(self.engine) as conn:
                chain.append(conn, username, "user.logout", f"user:{username}", {})

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password matches and the account is enabled, else None (no throttle:
        callers facing a network use ``login``)."""
        with reading(self.engine) as conn:
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
