"""CLI: `dcops change open|close|list`: change windows (cửa sổ thay đổi) in the alert store.

An alert on a host (and account) of an open window is an "expected change / thay đổi dự kiến":
linked to the window and resolved or grouped per the ``changes:`` config (docs/triage.md). The
playbooks' callback plugin (playbooks/callback_plugins/dcops_change.py) runs these commands
around every playbook run. The actor is who authenticated, as for `dcops alerts`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from dcops.cli.alerts import ConfigOpt, DbOpt, JsonOpt, actor, open_store
from dcops.errors import DcopsError

if TYPE_CHECKING:
    from dcops.alerts import ChangeWindow

change_app = typer.Typer(help="Change windows: alerts of a planned change become expected "
                              "changes / Cửa sổ thay đổi.", no_args_is_help=True)


@change_app.callback()
def _identity(
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", envvar="DCOPS_TOKEN_FILE",
        help="API token of a console user (as for dcops alerts).")] = None,
) -> None:
    """Change windows: alerts of a planned change become expected changes / Cửa sổ thay đổi."""
    from dcops.cli.authn import set_options

    set_options(token_file, False)


def _duration(value: str | None) -> timedelta | None:
    from dcops.alerts.timeutil import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise DcopsError(f"--duration {value!r}: expected a duration like 30m, 2h or 1d") from exc


def _print(windows: list[ChangeWindow], as_json: bool,
           counts: dict[int, tuple[int, int]] | None = None) -> None:
    counts = counts or {}
    if as_json:
        typer.echo(json.dumps([{**w.as_dict(), "alerts": counts.get(w.id, (0, 0))[0],
                                "alerts_open": counts.get(w.id, (0, 0))[1]} for w in windows],
                              ensure_ascii=False, indent=2))
        return
    t = Table(title=f"{len(windows)} change window(s) / cửa sổ thay đổi")
    for col in ("ID", "ticket / phiếu", "state / trạng thái", "hosts / máy",
                "accounts / tài khoản", "opened / mở", "until / đến", "by / người mở",
                "source / nguồn", "expected alerts / cảnh báo dự kiến"):
        t.add_column(col, overflow="fold")
    for w in windows:
        total, still_open = counts.get(w.id, (0, 0))
        state = "open / đang mở" if w.is_open() else "closed / đã đóng"
        t.add_row(str(w.id), w.ticket, state, ", ".join(w.hosts), ", ".join(w.accounts) or "*",
                  w.opened_at[:19].replace("T", " "),
                  (w.closed_at or w.closes_at)[:19].replace("T", " "), w.opened_by, w.source,
                  f"{total} ({still_open} open / đang mở)")
    Console().print(t)


@change_app.command("open")
def open_cmd(
    ticket: Annotated[str, typer.Option("--ticket", help="Change ticket, e.g. CHG-2026-0142.")],
    host: Annotated[list[str] | None, typer.Option(
        "--host", help="A host the change touches (repeat for each).")] = None,
    account: Annotated[list[str] | None, typer.Option(
        "--account", help="An account the change creates or uses (repeat); none: any "
                          "account on the hosts.")] = None,
    summary: Annotated[str, typer.Option("--summary", help="What is changed.")] = "",
    duration: Annotated[str | None, typer.Option(
        "--duration", help="Planned length (default changes.default_duration, 2h; at most "
                           "changes.max_duration, 12h).")] = None,
    source: Annotated[Literal["cli", "ansible"], typer.Option(
        "--source", help="Who records it (the playbooks' callback says ansible).")] = "cli",
    db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Open a change window / Mở cửa sổ thay đổi."""
    length = _duration(duration)
    with open_store(db, config) as store:
        who = actor(None, store, "change", "change open")
        w = store.changes.open(ticket, host or [], who, accounts=account or [], summary=summary,
                               duration=length, source=source)
    if as_json:
        typer.echo(json.dumps(w.as_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"change window {w.id} ({w.ticket}) open until {w.closes_at[:19]} on "
               f"{', '.join(w.hosts)} / đã mở cửa sổ thay đổi")


@change_app.command("close")
def close_cmd(
    window_id: Annotated[int | None, typer.Argument(help="Window id.")] = None,
    ticket: Annotated[str | None, typer.Option(
        "--ticket", help="Close every open window of this ticket.")] = None,
    db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Close a change window (by id or --ticket) / Đóng cửa sổ thay đổi."""
    if (window_id is None) == (not ticket):
        raise DcopsError("close: expected a window ID or --ticket TICKET (one of them)")
    with open_store(db, config) as store:
        who = actor(None, store, "change", "change close")
        closed = store.changes.close(who, window_id=window_id, ticket=ticket)
        counts = store.changes.alert_counts([w.id for w in closed])
    if as_json:
        _print(closed, True, counts)
        return
    for w in closed:
        total, still_open = counts.get(w.id, (0, 0))
        typer.echo(f"change window {w.id} ({w.ticket}) closed; {total} expected alert(s), "
                   f"{still_open} still open / đã đóng, {total} cảnh báo dự kiến")


@change_app.command("list")
def list_cmd(
    open_only: Annotated[bool, typer.Option("--open", help="Only windows open now.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change windows, newest first, with their expected alerts / Danh sách cửa sổ thay đổi."""
    with open_store(db, config) as store:
        actor(None, store, "read", "change list")
        windows = store.changes.list(open_only, limit)
        counts = store.changes.alert_counts([w.id for w in windows])
    _print(windows, as_json, counts)


def register(app: typer.Typer) -> None:
    """Add `dcops change` to the root."""
    app.add_typer(change_app, name="change")
