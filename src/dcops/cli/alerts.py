"""CLI: `dcops alerts list|show|ack|investigate|assign|note|resolve|silence|verify-audit|...`.

Every command runs as an authenticated identity checked against the one role table
(dcops.cli.authn): an API token, an OS account an admin mapped, or (local SQLite store) its owner.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dcops.alerts.models import Status
from dcops.cli.choices import Role, Severity
from dcops.cli.common import state_dir, vault_password_file
from dcops.errors import AccessDeniedError, DcopsError

if TYPE_CHECKING:
    from dcops.alerts import Alert, AlertFilter, AlertsConfig, AlertStore
    from dcops.alerts.trail import TrailConfig

DbOpt = Annotated[str | None, typer.Option(
    "--db", envvar="DCOPS_DB_URL",
    help="Store URL (sqlite:///path or postgresql://...). Default: <state>/alerts.db.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", envvar="DCOPS_ALERTS_CONFIG",
    help="Alerts YAML config (default <state>/alerts.yaml).")]
AsOpt = Annotated[str | None, typer.Option(
    "--as", hidden=True, help="Refused: the actor is who authenticated (--token-file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
IdsArg = Annotated[list[int], typer.Argument(help="Alert id(s).")]

alerts_app = typer.Typer(help="Alert queue and triage: one queue for SOC and NOC, with an audit "
                              "trail / Hàng đợi cảnh báo.", no_args_is_help=True)
users_app = typer.Typer(help="Console users (argon2 passwords) and roles.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents: related alerts grouped; merge and split.",
                            no_args_is_help=True)
alerts_app.add_typer(users_app, name="users")
alerts_app.add_typer(incidents_app, name="incidents")


@alerts_app.callback()
def _identity(
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", envvar="DCOPS_TOKEN_FILE",
        help="API token of a console user (dcops alerts login USER writes one); default on a "
             "shared store: <state>/cli-token.")] = None,
    db_owner: Annotated[bool, typer.Option(
        "--db-owner", help="User administration as the store's owner (the database login that "
                           "owns its tables, or the SQLite file's owner): checked.")] = False,
) -> None:
    """Alert queue and triage: one queue for SOC and NOC, with an audit trail / Hàng đợi."""
    from dcops.cli.authn import set_options

    set_options(token_file, db_owner)


def load_alerts_config(config: Path | None) -> AlertsConfig:
    """The YAML config (explicit path must exist; the default path is optional)."""
    from dcops.alerts import load_config

    return load_config(config if config is not None else state_dir() / "alerts.yaml")


def open_store(db: str | None, config: Path | None, alertmanager_url: str | None = None,
               inventory: Path | None = None, trail: TrailConfig | None = None) -> AlertStore:
    """Open the store with the configuration and, when configured, the Alertmanager silencer.

    With an inventory, the security level (cấp độ) of each information system comes from the site
    model (configured ``system_levels`` still win).
    """
    from dataclasses import replace

    from dcops.alerts import AlertmanagerSilencer, AlertStore, default_url
    from dcops.cli.alerts_trail import trail_config

    cfg = load_alerts_config(config)
    if inventory is not None:
        from dcops.inventory import load_inventory

        model = load_inventory(inventory, vault_password_file())
        levels = {name: s.level for name, s in model.systems.items()}
        cfg = replace(cfg, system_levels={**levels, **cfg.system_levels})
    am = alertmanager_url or os.environ.get("DCOPS_ALERTMANAGER_URL") or cfg.alertmanager_url
    return AlertStore(db or default_url(state_dir()), cfg,
                      silencer=AlertmanagerSilencer(am) if am else None,
                      trail=trail or trail_config())


def actor(as_user: str | None, store: AlertStore, permission: str, command: str) -> str:
    """The authenticated actor allowed `permission` (a bare --as name is not an identity)."""
    from dcops.cli.authn import authorise

    if as_user:
        raise AccessDeniedError("--as is refused: the audit trail records who authenticated "
                                "(--token-file, $DCOPS_TOKEN_FILE, an OS account mapped by an "
                                "admin, or the owner of a local SQLite store)")
    return authorise(store, permission, command)


def _time(value: str | None, option: str) -> str:
    from dcops.alerts.timeutil import iso, now, parse, parse_duration

    if not value:
        return ""
    try:
        if value[-1] in "smhdw" and value[:-1].replace(".", "").isdigit():
            return iso(now() - parse_duration(value))
        return iso(parse(value))
    except ValueError as exc:
        raise DcopsError(f"{option}: expected a duration (30m, 2h, 7d) or an ISO 8601 time, "
                         f"got {value!r}") from exc


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan",
             "informational": "dim"}


@alerts_app.command("list")
def list_cmd(
    severity: Annotated[list[Severity] | None, typer.Option("--severity", "-s")] = None,
    site: Annotated[list[str] | None, typer.Option("--site")] = None,
    system: Annotated[list[str] | None, typer.Option("--system")] = None,
    status: Annotated[list[Status] | None, typer.Option("--status")] = None,
    assignee: Annotated[str, typer.Option("--assignee")] = "",
    since: Annotated[str | None, typer.Option("--since", help="2h, 7d or ISO time")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only new/acknowledged/investigating")
                         ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """List alerts (newest activity first) with filters / Danh sách cảnh báo."""
    from dcops.alerts import AlertFilter

    statuses = [str(s) for s in status or []]
    if open_only:
        statuses += ["new", "acknowledged", "investigating"]
    f = AlertFilter(severity=[str(s) for s in severity or []], site=list(site or []),
                    system=list(system or []), status=statuses, assignee=assignee,
                    since=_time(since, "--since"), until=_time(until, "--until"), limit=limit)
    with open_store(db, config) as store:
        actor(None, store, "read", "list")
        _list(store, f, as_json)


def _list(store: AlertStore, f: AlertFilter, as_json: bool) -> None:
    rows = store.query(f)
    if as_json:
        _print_json([a.as_dict() for a in rows])
        return
    t = Table(title=f"{len(rows)} alert(s) / cảnh báo")
    for col in ("ID", "severity / mức độ", "status / trạng thái", "rule / quy tắc", "host / máy",
                "site / địa điểm", "system / hệ thống", "count / số lần", "last seen / lần cuối",
                "assignee / người xử lý"):
        t.add_column(col, overflow="fold")
    for a in rows:
        level = f" (L{a.system_level})" if a.system_level else ""
        status = a.status if a.change_window_id is None else (
            f"{a.status} [cyan](expected change #{a.change_window_id} / thay đổi dự kiến)[/]")
        t.add_row(str(a.id), f"[{SEV_STYLE.get(a.severity, '')}]{a.severity}[/]", status,
                  a.rule_title, a.host, a.site, a.system + level, str(a.count),
                  a.last_seen[:19].replace("T", " "), a.assignee)
    Console().print(t)


SpoolOpt = Annotated[Path | None, typer.Option(
    "--spool", envvar="DCOPS_SPOOL",
    help="Event spool the triggering events are read from (default <state>/spool.db)")]


@alerts_app.command("show")
def show(alert_id: int, db: DbOpt = None, config: ConfigOpt = None,
         as_json: JsonOpt = False, spool: SpoolOpt = None) -> None:
    """One alert with its events, notes, silences and history / Chi tiết cảnh báo."""
    from dcops.pipeline.reader import SpoolEvents

    with open_store(db, config) as store:
        actor(None, store, "read", "show")
        a = store.get(alert_id)
        if a is None:
            raise DcopsError(f"alert {alert_id} does not exist")
        notes = store.notes(alert_id)
        history = store.audit_records(target=f"alert:{alert_id}")
        silences = store.silences(alert_id)
        window = store.changes.get(a.change_window_id) if a.change_window_id else None
    events = SpoolEvents(spool or state_dir() / "spool.db").events(a.event_ids)
    if as_json:
        _print_json({"alert": a.as_dict(), "change_window": window.as_dict() if window else None,
                     "events": events, "notes": [asdict(n) for n in notes],
                     "silences": [asdict(s) for s in silences],
                     "history": [asdict(h) for h in history]})
        return
    c = Console()
    c.print(f"[bold]#{a.id} {a.rule_title}[/] [{SEV_STYLE.get(a.severity, '')}]{a.severity}[/] "
            f"status / trạng thái: [bold]{a.status}[/]")
    if window is not None:
        c.print(f"  [cyan]expected change / thay đổi dự kiến[/]: change window {window.id} "
                f"{escape(window.ticket)} ({escape(window.summary or '-')}), opened by "
                f"{escape(window.opened_by)} {window.opened_at[:19]}, "
                f"{'open' if window.is_open() else 'closed'}; hosts "
                f"{escape(', '.join(window.hosts))}; accounts "
                f"{escape(', '.join(window.accounts) or '*')}", highlight=False)
    for label, value in (("rule / quy tắc", a.rule_id), ("source / nguồn", a.source),
                         ("host / máy", a.host), ("source ip / địa chỉ nguồn", a.source_ip),
                         ("site / địa điểm", a.site),
                         ("system / hệ thống", f"{a.system} level/cấp độ {a.system_level or '-'}"),
                         ("first seen / lần đầu", a.first_seen),
                         ("last seen / lần cuối", a.last_seen),
                         ("count / số lần", a.count), ("assignee / người xử lý", a.assignee or "-"),
                         ("incident / sự cố", a.incident_id), ("ATT&CK", ", ".join(a.tags) or "-"),
                         ("events / sự kiện", ", ".join(a.event_ids) or "-"),
                         ("description / mô tả", a.description or "-")):
        c.print(f"  {label:32} {value}")
    if notes:
        c.print("[bold]notes / ghi chú[/]")
        for n in notes:
            c.print(f"  {n.created_at[:19]} {n.author}: {n.text}")
    if silences:
        c.print("[bold]silences / tạm ẩn[/]")
        for s in silences:
            c.print(f"  {s.am_silence_id} {s.state} until {s.ends_at[:19]} by {s.created_by}")
    _print_events(c, a.event_ids, events)
    c.print("[bold]history / lịch sử[/]")
    for h in history:
        detail = json.dumps(h.detail, ensure_ascii=False)
        c.print(f"  {h.ts[:19]} #{h.seq} {h.actor} {h.action} {detail}")


def _print_events(c: Console, ids: list[str], events: list[dict[str, str]]) -> None:
    """The triggering events' time, host, source, action and message; ids not in the spool."""
    if events:
        table = Table(title="events / sự kiện", title_justify="left")
        for col in ("time (UTC) / thời gian", "host / máy", "source / nguồn",
                    "action / hành động", "message / nội dung"):
            table.add_column(col, overflow="fold")
        for e in events:
            table.add_row(e["time"][:19].replace("T", " "), e["host"], e["source"],
                          e["action"] or "-", escape(e["message"]))
        c.print(table)
    missing = [i for i in ids if i not in {e["id"] for e in events}]
    if missing:
        c.print(f"  not in the event spool / không có trong bộ đệm sự kiện: "
                f"{', '.join(missing)}", highlight=False, markup=False)


def _each(ids: list[int], db: str | None, config: Path | None, verb: str, fn: Any,
          as_json: bool = False, single: bool = False, *, as_user: str | None = None,
          command: str = "", permission: str = "triage") -> None:
    """Apply `fn` to each alert; with --json print the updated alert(s) instead of a line each.

    Several ids give a JSON list (the ones that succeeded); one-alert commands an object. The
    failures are reported after the others were done, with a non-zero exit.
    """
    failed: list[str] = []
    done: list[Alert] = []
    with open_store(db, config) as store:
        who = actor(as_user, store, permission, command)
        for i in ids:
            try:
                fn(store, i, who)
                if as_json:
                    if (updated := store.get(i)) is not None:
                        done.append(updated)
                else:
                    typer.echo(f"alert {i}: {verb}")
            except DcopsError as exc:
                failed.append(f"{exc}")
    if as_json and (done or not single):
        _print_json(done[0].as_dict() if single else [a.as_dict() for a in done])
    if failed:
        raise DcopsError("; ".join(failed))


@alerts_app.command("ack")
def ack(ids: IdsArg, note: Annotated[str, typer.Option("--note")] = "", db: DbOpt = None,
        config: ConfigOpt = None, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Acknowledge alert(s) / Xác nhận."""
    _each(ids, db, config, "acknowledged", lambda s, i, who: s.acknowledge(i, who, note),
          as_json, as_user=as_user, command="ack")


@alerts_app.command("investigate")
def investigate(ids: IdsArg, note: Annotated[str, typer.Option("--note")] = "",
                db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None,
                as_json: JsonOpt = False) -> None:
    """Mark alert(s) as under investigation / Đang điều tra."""
    _each(ids, db, config, "investigating",
          lambda s, i, who: s.transition(i, "investigating", who, note), as_json,
          as_user=as_user, command="investigate")


@alerts_app.command("assign")
def assign(alert_id: int, assignee: str, db: DbOpt = None, config: ConfigOpt = None,
           as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Assign an alert to someone ('' to unassign) / Giao xử lý."""
    _each([alert_id], db, config, f"assigned to {assignee or '-'}",
          lambda s, i, who: s.assign(i, assignee, who), as_json, single=True, as_user=as_user,
          command="assign")


@alerts_app.command("note")
def note(alert_id: int, text: str, db: DbOpt = None, config: ConfigOpt = None,
         as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add a note to an alert / Ghi chú."""
    _each([alert_id], db, config, "note added", lambda s, i, who: s.add_note(i, who, text),
          as_json, single=True, as_user=as_user, command="note")


@alerts_app.command("resolve")
def resolve(ids: IdsArg, note: Annotated[str, typer.Option("--note")] = "",
            false_positive: Annotated[bool, typer.Option("--false-positive")] = False,
            db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None,
            as_json: JsonOpt = False) -> None:
    """Resolve alert(s), or close them as false positive / Đã xử lý."""
    verb = "false_positive" if false_positive else "resolved"
    _each(ids, db, config, verb, lambda s, i, who: s.resolve(i, who, note, false_positive),
          as_json, as_user=as_user, command="resolve")


@alerts_app.command("silence")
def silence(alert_id: int, comment: Annotated[str, typer.Option("--comment")] = "",
            duration: Annotated[str | None, typer.Option("--duration", help="e.g. 2h")] = None,
            alertmanager_url: Annotated[str | None, typer.Option("--alertmanager-url")] = None,
            db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None,
            as_json: JsonOpt = False) -> None:
    """Silence an Alertmanager alert in Alertmanager until it resolves / Tạm ẩn."""
    from dcops.alerts.timeutil import now, parse_duration

    try:
        length = parse_duration(duration) if duration else None
    except ValueError:
        length = None
    if duration and (length is None or length.total_seconds() <= 0):
        raise DcopsError(f"--duration {duration!r}: expected a positive duration (30m, 2h, 1d)")
    until: datetime | None = now() + length if length else None
    with open_store(db, config, alertmanager_url) as store:
        s = store.silence(alert_id, actor(as_user, store, "silence", "silence"), comment, until)
        updated = store.get(alert_id)
    if as_json:
        _print_json({"alert": updated.as_dict() if updated else None, "silence": asdict(s)})
        return
    typer.echo(f"alert {alert_id}: silence {s.am_silence_id} until {s.ends_at}")


@alerts_app.command("verify-audit")
def verify_audit(
    anchors: Annotated[list[Path] | None, typer.Option(
        "--anchors", help="More anchor copies to check, e.g. the syslog server's file")] = None,
    anchor_cert: Annotated[list[Path] | None, typer.Option(
        "--anchor-cert", help="More trusted anchor certificates (e.g. before a renewal)")] = None,
    anchor_ca: Annotated[Path | None, typer.Option(
        "--anchor-ca", help="Anchor certificates must be issued by this CA (PEM bundle)")] = None,
    db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
) -> None:
    """Check records, HMACs, key rotations and anchors; exit 1 naming the first bad record."""
    from dcops.cli.alerts_trail import print_verify, verify_trail_config

    trail = verify_trail_config(anchors, anchor_cert, anchor_ca)
    with open_store(db, config, trail=trail) as store:
        actor(None, store, "audit", "verify-audit")
        r = store.verify_audit()
    if as_json:
        _print_json(asdict(r))
    else:
        print_verify(r)
    if not r.ok:
        raise typer.Exit(1)


@alerts_app.command("audit")
def audit_cmd(target: Annotated[str | None, typer.Option("--target", help="alert:12")] = None,
              limit: Annotated[int, typer.Option("--limit", min=1)] = 100, db: DbOpt = None,
              config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show the audit trail, newest first / Nhật ký kiểm toán."""
    if target is not None and not target.partition(":")[2]:
        raise DcopsError(f"--target {target!r}: expected KIND:ID (alert:12, incident:3, "
                         f"user:NAME)")
    with open_store(db, config) as store:
        actor(None, store, "audit", "audit")
        recs = store.audit_records(target, limit, newest_first=True)
    if as_json:
        _print_json([asdict(r) for r in recs])
        return
    t = Table(title="audit trail / nhật ký kiểm toán")
    for col in ("#", "time / thời gian", "who / ai", "action / hành động", "target / đối tượng",
                "detail / chi tiết", "hash"):
        t.add_column(col, overflow="fold")
    for r in recs:
        t.add_row(str(r.seq), r.ts[:19], r.actor, r.action, r.target,
                  json.dumps(r.detail, ensure_ascii=False), r.hash[:12])
    Console().print(t)


@alerts_app.command("sla")
def sla_cmd(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Time to acknowledge / resolve per severity against SLA targets / Cam kết SLA."""
    from dcops.alerts import sla_report
    from dcops.alerts.sla import fmt_seconds

    with open_store(db, config) as store:
        actor(None, store, "read", "sla")
        rows = sla_report(store.sla_inputs(100_000), store.config)
    if as_json:
        _print_json([asdict(r) for r in rows])
        return
    t = Table(title="SLA per severity / theo mức độ")
    for col in ("severity / mức độ", "alerts / cảnh báo", "open / đang mở",
                "overdue / quá hạn", "ack target / hạn xác nhận", "mean ack / TB", "p90 ack",
                "ack breaches / vi phạm", "resolve target / hạn xử lý", "mean resolve / TB",
                "p90 resolve", "resolve breaches / vi phạm"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.severity, str(r.alerts), str(r.open), str(r.overdue),
                  fmt_seconds(r.target_ack_s), fmt_seconds(r.mean_ack_s),
                  fmt_seconds(r.p90_ack_s), str(r.ack_breaches), fmt_seconds(r.target_resolve_s),
                  fmt_seconds(r.mean_resolve_s), fmt_seconds(r.p90_resolve_s),
                  str(r.resolve_breaches))
    Console().print(t)


@users_app.command("add")
def users_add(username: str,
              role: Annotated[Role, typer.Option("--role")],
              password_stdin: Annotated[bool, typer.Option(
                  "--password-stdin", help="Read the password from stdin (else prompt).")] = False,
              db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None) -> None:
    """Create a console user or reset password and role / Thêm người dùng."""
    from dcops.alerts import Users

    if password_stdin:
        password = typer.get_text_stream("stdin").readline().rstrip("\n")
    else:
        password = typer.prompt("password / mật khẩu", hide_input=True,
                                confirmation_prompt=True)
    with open_store(db, config) as store:
        try:
            who = actor(as_user, store, "users", "users add")
        except AccessDeniedError:
            if as_user or Users(store.engine).list_users():
                raise
            _bootstrap(store, username, password, role)
            return
        Users(store.engine).add(username, password, role, who)
    typer.echo(f"user {username}: role {role}")


def _bootstrap(store: AlertStore, username: str, password: str, role: str) -> None:
    """The first admin of a store with no user at all, by whoever can reach it."""
    from dcops.alerts import Users
    from dcops.cli.authn import os_account

    if role != "admin":
        raise AccessDeniedError("this store has no user yet: the first one must be an admin "
                                "(--role admin), who then adds the others")
    Users(store.engine).bootstrap(username, password, f"bootstrap:os:{os_account()}")
    typer.echo(f"user {username}: role admin (first admin of an empty store, bootstrap by "
               f"os:{os_account()})")


@users_app.command("list")
def users_list(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List console users and roles."""
    from dcops.alerts import Users

    with open_store(db, config) as store:
        actor(None, store, "users", "users list")
        users = Users(store.engine).list_users()
    if as_json:
        _print_json([asdict(u) for u in users])
        return
    for u in users:
        typer.echo(f"{u.username:20} {u.role:10} {'disabled' if u.disabled else 'active'}")


@users_app.command("role")
def users_role(username: str,
               role: Annotated[Role, typer.Option("--role")],
               db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None) -> None:
    """Change a user's role, keeping the password (applies to open console sessions at once)."""
    from dcops.alerts import Users

    with open_store(db, config) as store:
        Users(store.engine).set_role(username, role,
                                     actor(as_user, store, "users", "users role"))
    typer.echo(f"user {username}: role {role}")


@users_app.command("disable")
def users_disable(username: str, enable: Annotated[bool, typer.Option("--enable")] = False,
                  db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None) -> None:
    """Disable (or --enable) a console user."""
    from dcops.alerts import Users

    with open_store(db, config) as store:
        Users(store.engine).set_disabled(username, not enable,
                                         actor(as_user, store, "users", "users disable"))
    typer.echo(f"user {username}: {'enabled' if enable else 'disabled'}")


@incidents_app.command("list")
def incidents_list(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Open incidents with their alerts / Sự cố."""
    with open_store(db, config) as store:
        actor(None, store, "read", "incidents list")
        incs = store.incidents()
    if as_json:
        _print_json([asdict(i) for i in incs])
        return
    for i in incs:
        typer.echo(f"{i.id:5} {i.status:7} alerts {','.join(map(str, i.alert_ids)):20} {i.title}")


@incidents_app.command("merge")
def incidents_merge(target: int, sources: list[int], db: DbOpt = None, config: ConfigOpt = None,
                    as_user: AsOpt = None) -> None:
    """Merge incidents SOURCES into TARGET / Gộp sự cố."""
    with open_store(db, config) as store:
        store.merge_incidents(target, sources,
                              actor(as_user, store, "triage", "incidents merge"))
    typer.echo(f"incident(s) {', '.join(map(str, sources))} merged into {target}")


@incidents_app.command("split")
def incidents_split(ids: IdsArg, title: Annotated[str, typer.Option("--title")] = "",
                    db: DbOpt = None, config: ConfigOpt = None, as_user: AsOpt = None) -> None:
    """Move the given alerts into a new incident / Tách sự cố."""
    with open_store(db, config) as store:
        new = store.split_incident(ids, actor(as_user, store, "triage", "incidents split"),
                                   title)
    typer.echo(f"alerts {', '.join(map(str, ids))} now in incident {new}")


def register(app: typer.Typer) -> None:
    """Add the alerts commands (and the identity ones of dcops.cli.alerts_auth) to the root."""
    from dcops.cli import alerts_auth

    alerts_auth.register(alerts_app, users_app)
    from dcops.cli.alerts_trail import register_trail

    register_trail(alerts_app)
    app.add_typer(alerts_app, name="alerts")
