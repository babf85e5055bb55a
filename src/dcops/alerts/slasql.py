"""The SLA report (`dcops.alerts.sla.sla_report`) computed in the database.

At 100,000 alerts loading every alert's times into Python took 2-3 s on the console's /sla page.
Here the database computes each alert's time to acknowledge and to resolve in whole microseconds
(exact, as `timedelta` is: the stored timestamps are UTC strings of one fixed form) and the
counts and breaches per severity; only the times of acknowledged or resolved alerts come
back, for the 90th percentiles (nearest rank). The figures equal `sla_report` over the same alerts
(tests/unit/alerts/test_alerts_bulk.py compares them on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    case,
    cast,
    func,
    literal,
)
from sqlalchemy import select as sql_select

from dcops.alerts import schema
from dcops.alerts.config import SEVERITIES, AlertsConfig
from dcops.alerts.sla import SlaRow, percentile
from dcops.alerts.timeutil import iso, now

_US = 1_000_000


def _micros_between(conn: Connection, start: Any, end: Any) -> ColumnElement[Any]:
    """end - start in whole microseconds, both stored timestamps (``...T..:..:...ffffffZ``)."""
    if conn.dialect.name == "postgresql":
        def ts(c: Any) -> Any:
            return cast(func.replace(c, "Z", ""), DateTime())
        return cast(func.extract("epoch", ts(end) - ts(start)) * _US, BigInteger)

    def secs(c: Any) -> Any:
        return cast(func.strftime("%s", func.substr(c, 1, 19)), Integer)

    def frac(c: Any) -> Any:
        return cast(func.substr(c, 21, 6), Integer)

    diff: ColumnElement[Any] = (secs(end) - secs(start)) * _US + (frac(end) - frac(start))
    return diff


def sla_rows(conn: Connection, config: AlertsConfig, at: datetime | None = None,
             limit: int = 100_000) -> list[SlaRow]:
    """`sla_report` over the newest `limit` alerts (by last activity), computed in SQL."""
    a = schema.alerts.c
    at_s = iso(at or now())
    total = conn.execute(sql_select(func.count()).select_from(schema.alerts)).scalar_one()
    where: list[Any] = [a.severity.in_(SEVERITIES)]
    if total > limit:  # only then is "the newest `limit`" a restriction
        newest = (sql_select(a.id).order_by(a.last_seen.desc(), a.id.desc()).limit(limit)
                  .scalar_subquery())
        where.append(a.id.in_(newest))
    ack_us = _micros_between(conn, a.created_at, func.coalesce(a.acked_at, literal(at_s)))
    res_us = _micros_between(conn, a.created_at, func.coalesce(a.resolved_at, literal(at_s)))
    lim_ack = case({s: int(config.sla[s].ack.total_seconds() * _US) for s in SEVERITIES},
                   value=a.severity)
    lim_res = case({s: int(config.sla[s].resolve.total_seconds() * _US) for s in SEVERITIES},
                   value=a.severity)
    acked, resolved = a.acked_at.is_not(None), a.resolved_at.is_not(None)

    def count_if(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    q = (sql_select(
        a.severity, func.count().label("n"), count_if(~resolved).label("open"),
        count_if(acked).label("n_ack"), count_if(resolved).label("n_res"),
        count_if(ack_us > lim_ack).label("ack_breaches"),
        count_if(res_us > lim_res).label("res_breaches"),
        count_if(~resolved & ((~acked & (ack_us > lim_ack)) | (res_us > lim_res)))
        .label("overdue"))
        .where(*where).group_by(a.severity))
    agg = {r.severity: r for r in conn.execute(q)}
    acks: dict[str, list[float]] = {s: [] for s in SEVERITIES}
    ress: dict[str, list[float]] = {s: [] for s in SEVERITIES}
    times = (sql_select(a.severity, case((acked, ack_us)), case((resolved, res_us)))
             .where(*where, acked | resolved))
    for sev, ack, res in conn.execute(times):
        if ack is not None:
            acks[sev].append(int(ack) / _US)
        if res is not None:
            ress[sev].append(int(res) / _US)
    rows = []
    for sev in SEVERITIES:
        target = config.sla[sev]
        r = agg.get(sev)
        n_ack = int(r.n_ack) if r is not None else 0
        n_res = int(r.n_res) if r is not None else 0
        rows.append(SlaRow(
            severity=sev, target_ack_s=target.ack.total_seconds(),
            target_resolve_s=target.resolve.total_seconds(),
            alerts=int(r.n) if r is not None else 0, open=int(r.open or 0) if r else 0,
            mean_ack_s=sum(acks[sev]) / n_ack if n_ack else None,
            p90_ack_s=percentile(acks[sev], 90),
            mean_resolve_s=sum(ress[sev]) / n_res if n_res else None,
            p90_resolve_s=percentile(ress[sev], 90),
            ack_breaches=int(r.ack_breaches or 0) if r else 0,
            resolve_breaches=int(r.res_breaches or 0) if r else 0,
            overdue=int(r.overdue or 0) if r else 0))
    return rows
