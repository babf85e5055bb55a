"""Change windows: a planned change (ticket, who, which hosts and accounts, until when).

`dcops change open/close` or the Ansible callback plugin shipped with the playbooks
(``playbooks/callback_plugins/dcops_change.py``) record them. The alert store matches every new
alert against the windows open at its time (``match``): a matching alert is linked to the window
and handled per the ``changes:`` policy of its rule (``AlertsConfig.changes``), never dropped.
Every open and close is a record in the audit trail (``change.open``, ``change.close``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select, update

from dcops.alerts import chain, schema
from dcops.alerts.config import ChangesConfig
from dcops.alerts.db import reading
from dcops.alerts.timeutil import iso, now
from dcops.errors import AlertStoreError

#: Fields naming the account an event is about, most specific first (ECS, Windows, correlations'
#: ``group`` aliases such as ``account``).
ACCOUNT_FIELDS = ("user.target.name", "TargetUserName", "winlog.event_data.TargetUserName",
                  "user.name", "account", "SubjectUserName")

SOURCES = ("cli", "ansible")
OPEN = ("new", "acknowledged", "investigating")


@dataclass(frozen=True, slots=True)
class ChangeWindow:
    """One change window; `closed_at` None while it is open (until `closes_at` at the latest)."""

    id: int
    ticket: str
    summary: str
    hosts: tuple[str, ...]
    accounts: tuple[str, ...]
    opened_by: str
    opened_at: str
    closes_at: str
    closed_at: str | None
    closed_by: str | None
    source: str

    def is_open(self, at: datetime | None = None) -> bool:
        """Open at `at` (default now): not closed and before its planned end."""
        return self.closed_at is None and iso(at or now()) <= self.closes_at

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping (with `open` for now)."""
        return {**asdict(self), "hosts": list(self.hosts), "accounts": list(self.accounts),
                "open": self.is_open()}


def _row(r: Any) -> ChangeWindow:
    return ChangeWindow(int(r.id), r.ticket, r.summary, tuple(json.loads(r.hosts)),
                        tuple(json.loads(r.accounts)), r.opened_by, r.opened_at, r.closes_at,
                        r.closed_at, r.closed_by, r.source)


def _hours(length: timedelta) -> str:
    return f"{length.total_seconds() / 3600:g}h"


def _host_key(host: str) -> str:
    """Hosts compare case-insensitively and by short name (lab-app1 == lab-app1.lab.local)."""
    return host.strip().lower().split(".", 1)[0] if host.strip() else ""


def accounts_of(fields: Mapping[str, Any]) -> list[str]:
    """The account names an event's or a correlation's fields (and its ``group``) are about."""
    group = fields.get("group")
    out: list[str] = []
    for source in (fields, group if isinstance(group, Mapping) else {}):
        for name in ACCOUNT_FIELDS:
            value = source.get(name)
            if isinstance(value, str) and value and value not in out:
                out.append(value)
    return out


def _clean(values: Iterable[str], what: str) -> list[str]:
    out: list[str] = []
    for value in values:
        v = value.strip()
        if not v:
            raise AlertStoreError(f"an empty {what} name (expected e.g. lab-app1)")
        if v not in out:
            out.append(v)
    return out


class ChangeWindows:
    """Open, close, list and match change windows of one store."""

    def __init__(self, engine: Engine, config: ChangesConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ChangesConfig()

    def open(self, ticket: str, hosts: Sequence[str], actor: str, *,
             accounts: Sequence[str] = (), summary: str = "",
             duration: timedelta | None = None, source: str = "cli") -> ChangeWindow:
        """Record a window open from now for `duration` (the configured default, capped)."""
        ticket = ticket.strip()
        if not ticket:
            raise AlertStoreError("a change window needs a ticket (e.g. CHG-2026-0142)")
        if len(ticket) > 100:
            raise AlertStoreError("ticket: at most 100 characters")
        host_list = _clean(hosts, "host")
        if not host_list:
            raise AlertStoreError("a change window needs at least one host (--host)")
        account_list = _clean(accounts, "account")
        length = self.config.default_duration if duration is None else duration
        if length <= timedelta(0) or length > self.config.max_duration:
            raise AlertStoreError(f"duration {_hours(length)}: expected more than 0 and at "
                                  f"most {_hours(self.config.max_duration)} "
                                  f"(changes.max_duration)")
        if source not in SOURCES:
            raise AlertStoreError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
        opened = now()
        values = {"ticket": ticket, "summary": summary, "hosts": json.dumps(host_list),
                  "accounts": json.dumps(account_list), "opened_by": actor,
                  "opened_at": iso(opened), "closes_at": iso(opened + length),
                  "closed_at": None, "closed_by": None, "source": source}
        with chain.writing(self.engine) as conn:
            wid = int(conn.execute(schema.change_windows.insert().values(**values))
                      .inserted_primary_key[0])  # type: ignore[index]
            chain.append(conn, actor, "change.open", f"change:{wid}", {
                "ticket": ticket, "hosts": host_list, "accounts": account_list,
                "summary": summary, "closes_at": values["closes_at"], "source": source})
        return self._require(wid)

    def close(self, actor: str, window_id: int | None = None,
              ticket: str | None = None) -> list[ChangeWindow]:
        """Close one window by id, or every open window of a ticket; returns them."""
        w = schema.change_windows.c
        with chain.writing(self.engine) as conn:
            if window_id is not None:
                rows = list(conn.execute(select(schema.change_windows)
                                         .where(w.id == window_id)))
                if not rows:
                    raise AlertStoreError(f"change window {window_id} does not exist")
                if rows[0].closed_at is not None:
                    raise AlertStoreError(f"change window {window_id} is already closed "
                                          f"({rows[0].closed_at} by {rows[0].closed_by})")
            elif ticket:
                rows = list(conn.execute(select(schema.change_windows)
                                         .where(w.ticket == ticket, w.closed_at.is_(None))
                                         .order_by(w.id)))
                if not rows:
                    raise AlertStoreError(f"no open change window for ticket {ticket!r}")
            else:
                raise AlertStoreError("close needs a window id or --ticket")
            ts = iso(now())
            for r in rows:
                conn.execute(update(schema.change_windows).where(w.id == r.id)
                             .values(closed_at=ts, closed_by=actor))
                chain.append(conn, actor, "change.close", f"change:{r.id}",
                             {"ticket": r.ticket, "planned_end": r.closes_at})
        return [self._require(int(r.id)) for r in rows]

    def get(self, window_id: int) -> ChangeWindow | None:
        """One window, or None."""
        with reading(self.engine) as conn:
            r = conn.execute(select(schema.change_windows)
                             .where(schema.change_windows.c.id == window_id)).first()
        return _row(r) if r is not None else None

    def _require(self, window_id: int) -> ChangeWindow:
        found = self.get(window_id)
        if found is None:  # pragma: no cover - just written
            raise AlertStoreError(f"change window {window_id} does not exist")
        return found

    def list(self, open_only: bool = False, limit: int = 200) -> list[ChangeWindow]:
        """Windows, newest first (only the ones open now with `open_only`)."""
        w = schema.change_windows.c
        q = select(schema.change_windows).order_by(w.id.desc()).limit(limit)
        if open_only:
            q = q.where(w.closed_at.is_(None), w.closes_at >= iso(now()))
        with reading(self.engine) as conn:
            return [_row(r) for r in conn.execute(q)]

    def alert_counts(self, window_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(alerts, of which still open) expected by each window."""
        a = schema.alerts.c
        out: dict[int, tuple[int, int]] = {}
        if not window_ids:
            return out
        with reading(self.engine) as conn:
            for r in conn.execute(select(a.change_window_id, a.status, func.count())
                                  .where(a.change_window_id.in_(list(window_ids)))
                                  .group_by(a.change_window_id, a.status)):
                total, still_open = out.get(int(r[0]), (0, 0))
                out[int(r[0])] = (total + int(r[2]),
                                  still_open + (int(r[2]) if r[1] in OPEN else 0))
        return out

    def active_at(self, at: datetime, conn: Connection | None = None,
                  grace: timedelta | None = None) -> builtins.list[ChangeWindow]:
        """Windows open at `at`, or closed (or past their planned end) less than `grace` ago."""
        w = schema.change_windows.c
        late = iso(at - (self.config.grace if grace is None else grace))
        q = (select(schema.change_windows)
             .where(w.opened_at <= iso(at), w.closes_at >= late,
                    or_(w.closed_at.is_(None), w.closed_at >= late))
             .order_by(w.id.desc()))
        if conn is not None:
            return [_row(r) for r in conn.execute(q)]
        with reading(self.engine) as c:
            return [_row(r) for r in c.execute(q)]

    def match(self, conn: Connection, host: str, accounts: Sequence[str],
              at: datetime) -> ChangeWindow | None:
        """The newest window covering `host` at `at` (with the grace) whose accounts, if it
        lists any, include one of `accounts`; None when no window covers the alert."""
        key = _host_key(host)
        if not key:
            return None
        for window in self.active_at(at, conn):
            if key not in {_host_key(h) for h in window.hosts}:
                continue
            if window.accounts and not set(window.accounts) & set(accounts):
                continue
            return window
        return None
