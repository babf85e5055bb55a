"""Who runs a `dcops alerts` command, and whether the one role table (dcops.model.rbac) lets them.

- An API token (``--token-file``/``$DCOPS_TOKEN_FILE``, or ``<state>/cli-token`` that
  ``dcops alerts login`` writes) acts as its console user, on any store.
- On a shared store (PostgreSQL) without a token: the operating-system account
  (``name@host``, from the effective uid) if an admin mapped it to a console user; otherwise
  the command is refused.
- ``--db-owner`` (user administration only): the database login owns the store's tables, or
  the caller owns the SQLite file; checked, never taken on trust.
- A local SQLite store used by the owner of its file, without a token: single-user mode, acting
  as ``os:NAME`` with every permission (the file's owner can change it anyway).
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dcops.cli.common import state_dir
from dcops.errors import AccessDeniedError, ConfigError
from dcops.model.rbac import OWNER, allowed

if TYPE_CHECKING:
    from dcops.alerts import AlertStore


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: the name recorded in the audit trail, the role, how it was established."""

    actor: str
    role: str
    how: str


def os_user() -> str:
    """The effective user's name (never $USER/$LOGNAME, which anyone can set)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid{os.geteuid()}"


def os_account() -> str:
    """``name@host`` as an admin maps it."""
    return f"{os_user()}@{socket.gethostname()}"


def default_token_file() -> Path:
    """Where `dcops alerts login` keeps the token by default."""
    return state_dir() / "cli-token"


def read_secret(path: Path, what: str, *, private: bool = True) -> str:
    """A secret from a file; refused when others may read it (group too, when `private`)."""
    try:
        st = path.stat()
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror}", file=str(path)) from exc
    exposed = st.st_mode & (stat.S_IRWXG | stat.S_IRWXO if private else stat.S_IRWXO)
    if exposed:
        raise ConfigError(f"the {what} may be read by others (mode {stat.S_IMODE(st.st_mode):o});"
                          f" expected {'0600' if private else '0640 or stricter'}: chmod "
                          f"{'600' if private else 'o-rwx'} {path}", file=str(path))
    if not value:
        raise ConfigError(f"the {what} is empty", file=str(path))
    return value


def write_secret(path: Path, value: str) -> None:
    """Write a secret file created 0600 (replacing an older one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    tmp.replace(path)


@dataclass(slots=True)
class _Options:
    token_file: Path | None = None
    db_owner: bool = False


_OPTIONS = _Options()


def set_options(token_file: Path | None, db_owner: bool) -> None:
    """Called by the `dcops alerts` group on every invocation (before its command runs)."""
    _OPTIONS.token_file, _OPTIONS.db_owner = token_file, db_owner


def auth_options() -> tuple[Path | None, bool]:
    """``--token-file`` and ``--db-owner`` given to the `dcops alerts` group."""
    return _OPTIONS.token_file, _OPTIONS.db_owner


def resolve(store: AlertStore, permission: str) -> Principal:
    """Establish who runs the command (see the module docstring)."""
    from dcops.alerts.credentials import OsUsers, Tokens, store_owner

    token_file, db_owner = auth_options()
    shared = store.engine.dialect.name != "sqlite"
    if token_file is None and shared and default_token_file().is_file():
        token_file = default_token_file()
    if token_file is not None:
        who = Tokens(store.engine).verify(read_secret(token_file, "API token file"))
        if who is None:
            raise AccessDeniedError(f"{token_file}: the token is unknown to this store, revoked "
                                    "or expired, or its user is disabled (a new one: dcops "
                                    "alerts login USER)")
        return Principal(who.username, who.role, f"{who.role}, API token from {token_file}")
    if db_owner:
        if permission != "users":
            raise AccessDeniedError("--db-owner is for user administration only (the first "
                                    "admin, recovery); act as a console user for the rest")
        owner = store_owner(store.engine)
        if owner is None:
            raise AccessDeniedError("--db-owner: this database login does not own the store's "
                                    "tables (nor is it a superuser); connect as the owner")
        return Principal(f"{owner.replace('db:', 'dbowner:')}", OWNER,
                         "store owner, --db-owner checked against the database")
    if not shared:
        if store_owner(store.engine) is None:
            raise AccessDeniedError(f"{store.engine.url.database}: you ({os_user()}) do not own "
                                    "this SQLite store: act as a console user with --token-file "
                                    "(dcops alerts login USER)")
        return Principal(f"os:{os_user()}", OWNER, "local SQLite store, single-user mode")
    account = os_account()
    mapped = OsUsers(store.engine).lookup(account)
    if mapped is not None:
        return Principal(mapped.username, mapped.role,
                         f"{mapped.role}, OS account {account} mapped by an admin")
    raise AccessDeniedError(
        f"a shared store needs a console identity: --token-file FILE or $DCOPS_TOKEN_FILE "
        f"(dcops alerts login USER writes one), or an admin maps this OS account: dcops alerts "
        f"users map-os-user {os_user()} USER --host {socket.gethostname()}")


def authorise(store: AlertStore, permission: str, command: str) -> str:
    """The actor for the audit trail, after checking the role table; says who it acts as."""
    p = resolve(store, permission)
    if not allowed(p.role, permission):
        where = command if command.startswith("change ") else f"alerts {command}"
        raise AccessDeniedError(f"{p.actor} ({p.role}) may not do `dcops {where}`: it "
                                f"needs the {permission} permission / không có quyền")
    typer.echo(f"acting as {p.actor} ({p.how})", err=True)
    return p.actor
