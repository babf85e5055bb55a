"""CLI: `dcops alerts login` and the identity side of `dcops alerts users` (tokens, OS accounts,
login locks). Every change here is audited; all but `login` need the users permission (admin)."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from dcops.cli.alerts import ConfigOpt, DbOpt, JsonOpt, actor, open_store
from dcops.errors import AccessDeniedError, DcopsError

TtlOpt = Annotated[str, typer.Option("--ttl", help="Lifetime: 90d, 12h; 'never' for none.")]


def _ttl(value: str) -> timedelta | None:
    from dcops.alerts.timeutil import parse_duration

    if value == "never":
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise DcopsError(f"--ttl: expected a duration like 90d or 12h, or never; got {value!r}"
                         ) from exc


def login(username: str,
          password_stdin: Annotated[bool, typer.Option(
              "--password-stdin", help="Read the password from stdin (else prompt).")] = False,
          out: Annotated[Path | None, typer.Option(
              "--out", help="Where the token goes (default: --token-file, else "
                            "<state>/cli-token); written 0600.")] = None,
          label: Annotated[str, typer.Option("--label")] = "cli",
          ttl: TtlOpt = "12h", db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Log in as a console user and keep an API token for the CLI / Đăng nhập.

    The password goes through the same throttle as the console's login page.
    """
    from dcops.alerts.credentials import Tokens
    from dcops.alerts.throttle import LoginThrottle
    from dcops.alerts.users import Users
    from dcops.cli.authn import auth_options, default_token_file, os_account, write_secret

    if password_stdin:
        password = typer.get_text_stream("stdin").readline().rstrip("\n")
    else:
        password = typer.prompt("password / mật khẩu", hide_input=True)
    target = out or auth_options()[0] or default_token_file()
    lifetime = _ttl(ttl)
    with open_store(db, config) as store:
        users = Users(store.engine, LoginThrottle(store.engine, store.config.login))
        r = users.login(username, password, f"cli:{os_account()}"[:64])
        if r.retry_after > 0:
            raise AccessDeniedError(f"too many failed logins: try again in {r.retry_after:.0f} s "
                                    "/ đăng nhập sai quá nhiều lần")
        if r.user is None:
            raise AccessDeniedError("invalid user or password / sai tên hoặc mật khẩu")
        token = Tokens(store.engine).issue(
            r.user.username, r.user.username, label,
            lifetime)
    write_secret(target, token)
    typer.echo(f"logged in as {username} ({r.user.role}); token in {target} (valid {ttl})")


def users_token(username: str,
                out: Annotated[Path, typer.Option("--out", help="Token file, written 0600.")],
                label: Annotated[str, typer.Option("--label")] = "",
                ttl: TtlOpt = "90d", db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Issue an API token for a user (admin), e.g. a service account / Cấp mã truy cập."""
    from dcops.alerts.credentials import Tokens
    from dcops.cli.authn import write_secret

    lifetime = _ttl(ttl)
    with open_store(db, config) as store:
        token = Tokens(store.engine).issue(
            username, actor(None, store, "users", "users token"), label,
            lifetime)
    write_secret(out, token)
    typer.echo(f"token for {username} written to {out}")


def users_tokens(username: Annotated[str | None, typer.Argument()] = None, db: DbOpt = None,
                 config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List API tokens (never their secrets) (admin)."""
    from dcops.alerts.credentials import Tokens

    with open_store(db, config) as store:
        actor(None, store, "users", "users tokens")
        tokens = Tokens(store.engine).list(username)
    if as_json:
        typer.echo(json.dumps([asdict(t) for t in tokens], indent=2))
        return
    for t in tokens:
        state = f"revoked {t.revoked_at[:19]}" if t.revoked_at else \
            f"expires {t.expires_at[:19] if t.expires_at else 'never'}"
        typer.echo(f"{t.id}  {t.username:16} {t.label:12} {state}")


def users_token_revoke(token_id: str, db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Revoke an API token by id (admin)."""
    from dcops.alerts.credentials import Tokens

    with open_store(db, config) as store:
        Tokens(store.engine).revoke(token_id, actor(None, store, "users", "users token-revoke"))
    typer.echo(f"token {token_id}: revoked")


HostOpt = Annotated[str, typer.Option("--host", help="The machine of the OS account "
                                                     "(default: this one).")]


def users_map_os_user(os_user: str, username: str, host: HostOpt = "", db: DbOpt = None,
                      config: ConfigOpt = None) -> None:
    """Let an OS account (OSUSER@HOST) act as a console user on a shared store (admin)."""
    from dcops.alerts.credentials import OsUsers

    account = f"{os_user}@{host or socket.gethostname()}"
    with open_store(db, config) as store:
        OsUsers(store.engine).map(account, username,
                                  actor(None, store, "users", "users map-os-user"))
    typer.echo(f"OS account {account} acts as {username}")


def users_unmap_os_user(os_user: str, host: HostOpt = "", db: DbOpt = None,
                        config: ConfigOpt = None) -> None:
    """Remove an OS account's mapping (admin)."""
    from dcops.alerts.credentials import OsUsers

    account = f"{os_user}@{host or socket.gethostname()}"
    with open_store(db, config) as store:
        OsUsers(store.engine).unmap(account, actor(None, store, "users", "users unmap-os-user"))
    typer.echo(f"OS account {account}: mapping removed")


def users_unlock(username: Annotated[str | None, typer.Argument()] = None,
                 address: Annotated[str, typer.Option("--address", help="A locked source "
                                                                        "address instead.")] = "",
                 db: DbOpt = None, config: ConfigOpt = None) -> None:
    """End a login lock of a user or of a source address (admin) / Mở khóa đăng nhập."""
    from dcops.alerts.throttle import LoginThrottle

    if bool(username) == bool(address):
        raise DcopsError("unlock: give a user name or --address ADDRESS (one of them)")
    key = f"user:{username}" if username else f"addr:{address}"
    with open_store(db, config) as store:
        done = LoginThrottle(store.engine, store.config.login).unlock(
            key, actor(None, store, "users", "users unlock"))
    if not done:
        raise DcopsError(f"{key} has no failed logins or lock to clear")
    typer.echo(f"{key}: unlocked")


def users_locks(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Accounts and addresses locked now after failed logins (admin)."""
    from dcops.alerts.throttle import LoginThrottle

    with open_store(db, config) as store:
        actor(None, store, "users", "users locks")
        locks = LoginThrottle(store.engine, store.config.login).locks()
    if as_json:
        typer.echo(json.dumps([asdict(x) for x in locks], indent=2))
        return
    for x in locks:
        typer.echo(f"{x.key:40} until {x.until[:19]}Z  last client {x.last_client}")


def register(alerts_app: typer.Typer, users_app: typer.Typer) -> None:
    """Add `alerts login` and the identity commands of `alerts users`."""
    alerts_app.command("login")(login)
    users_app.command("token")(users_token)
    users_app.command("tokens")(users_tokens)
    users_app.command("token-revoke")(users_token_revoke)
    users_app.command("map-os-user")(users_map_os_user)
    users_app.command("unmap-os-user")(users_unmap_os_user)
    users_app.command("unlock")(users_unlock)
    users_app.command("locks")(users_locks)
