"""sla_report with fixed timestamps: exact means, 90th percentiles, breaches and overdue alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dcops.alerts import AlertsConfig
from dcops.alerts.config import SlaTarget
from dcops.alerts.models import Alert
from dcops.alerts.sla import SlaRow, fmt_seconds, percentile, sla_report

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def ts(hhmm: str) -> str:
    h, m = hhmm.split(":")
    return f"2026-11-22T{h}:{m}:00.000000Z"


def alert(i: int, severity: str, created: str, acked: str | None = None,
          resolved: str | None = None) -> Alert:
    status = "resolved" if resolved else ("acknowledged" if acked else "new")
    return Alert(id=i, source="sigma", rule_id="r", rule_title="t", severity=severity,
                 status=status, dedup_key="", site="", system="", system_level=None, host="",
                 source_ip="", first_seen=ts(created), last_seen=ts(created), count=1, tags=[],
                 labels={}, description="", fingerprint="", assignee="", incident_id=None,
                 created_at=ts(created), acked_at=ts(acked) if acked else None,
                 resolved_at=ts(resolved) if resolved else None)


# Default targets: high ack 30m / resolve 8h, critical 15m / 4h.
ALERTS = [
    alert(1, "high", "00:00", acked="00:10", resolved="02:00"),  # ack 600 s, resolve 7200 s
    alert(2, "high", "00:00", acked="00:50", resolved="10:00"),  # ack 3000 s late, 36000 s late
    alert(3, "high", "00:00", acked="00:20"),                    # open 12 h: past resolve target
    alert(4, "high", "11:50"),                                   # open 10 min: inside both
    alert(5, "high", "11:00"),                                   # unacked 1 h: past ack target
    alert(6, "critical", "11:50", acked="11:55"),                # ack 300 s, open 10 min
]


def rows(alerts: list[Alert], config: AlertsConfig | None = None) -> dict[str, SlaRow]:
    return {r.severity: r for r in sla_report(alerts, config or AlertsConfig(), at=AT)}


def test_exact_figures_per_severity() -> None:
    high = rows(ALERTS)["high"]
    assert (high.target_ack_s, high.target_resolve_s) == (1800, 28800)
    assert (high.alerts, high.open) == (5, 3)
    assert high.mean_ack_s == 1600  # (600 + 3000 + 1200) / 3
    assert high.p90_ack_s == 3000
    assert high.mean_resolve_s == 21600  # (7200 + 36000) / 2
    assert high.p90_resolve_s == 36000
    assert high.ack_breaches == 2  # alert 2 (acked late) and 5 (still unacked after 1 h)
    assert high.resolve_breaches == 2  # alert 2 (resolved late) and 3 (open for 12 h)
    assert high.overdue == 2  # open now and past a target: 3 (resolve) and 5 (ack)


def test_other_severities_and_empty_rows() -> None:
    r = rows(ALERTS)
    crit = r["critical"]
    assert (crit.alerts, crit.open, crit.mean_ack_s, crit.p90_ack_s) == (1, 1, 300, 300)
    assert (crit.mean_resolve_s, crit.ack_breaches, crit.resolve_breaches, crit.overdue) == (
        None, 0, 0, 0)
    low = r["low"]
    assert (low.alerts, low.mean_ack_s, low.p90_resolve_s, low.overdue) == (0, None, None, 0)
    assert list(r) == ["critical", "high", "medium", "low", "informational"]


def test_targets_come_from_the_configuration() -> None:
    cfg = AlertsConfig()
    cfg.sla["high"] = SlaTarget(ack=timedelta(hours=1), resolve=timedelta(hours=12))
    high = rows(ALERTS, cfg)["high"]
    assert (high.target_ack_s, high.target_resolve_s) == (3600, 43200)
    assert high.ack_breaches == 0  # 3000 s and the unacked 3600 s are inside one hour
    assert high.resolve_breaches == 0  # 36000 s and the open 43200 s are not past 12 h
    assert high.overdue == 0


def test_exactly_on_target_is_not_a_breach() -> None:
    on_time = [alert(1, "critical", "10:00", acked="10:15", resolved="14:00")]
    crit = rows(on_time)["critical"]
    assert (crit.ack_breaches, crit.resolve_breaches) == (0, 0)
    late = [alert(1, "critical", "10:00", acked="10:16", resolved="14:01")]
    crit = rows(late)["critical"]
    assert (crit.ack_breaches, crit.resolve_breaches) == (1, 1)


def test_acked_late_but_open_is_a_breach_not_overdue() -> None:
    high = rows([alert(1, "high", "11:00", acked="11:45")])["high"]
    assert (high.ack_breaches, high.resolve_breaches, high.overdue) == (1, 0, 0)


def test_percentile_nearest_rank() -> None:
    assert percentile([float(x) for x in range(1, 11)], 90) == 9
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2
    assert percentile([5.0], 90) == 5
    assert percentile([], 90) is None


def test_fmt_seconds() -> None:
    assert [fmt_seconds(v) for v in (None, 42, 600, 3900, 36000)] == [
        "-", "42s", "10m00s", "1h05m", "10h00m"]
