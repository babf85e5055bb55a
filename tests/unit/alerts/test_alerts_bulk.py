"""The bulk webhook path (dcops.alerts.bulk) against the per-alert path, body for body.

Two stores take the same sequence of Alertmanager bodies, one through `ingest_webhook` (bulk) and
one through `ingest_webhook_per_alert`; the alerts, incidents, detections, counts and the audit
trail (minus timestamps and HMACs, which depend on time) must be the same, and both trails verify.
Runs on SQLite here and on PostgreSQL in tests/integration/alerts/test_alerts_bulk_postgres.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dcops.alerts import AlertFilter, AlertsConfig, AlertStore, WebhookPayloadError, ingest_webhook
from dcops.alerts.bridge import IngestResult, ingest_webhook_per_alert
from dcops.alerts.timeutil import iso
from dcops.alerts.trail import TrailConfig
from dcops.model.event import Detection

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _second_url(db_url: str) -> str:
    """A second, empty database beside `db_url` (a file on SQLite, a schema-free db on PG)."""
    if db_url.startswith("sqlite:///"):
        return db_url.replace("alerts.db", "alerts-ref.db")
    import psycopg

    base, name = db_url.rsplit("/", 1)
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}_ref")
    return f"{base}/{name}_ref"


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> Iterator[tuple[AlertStore, AlertStore]]:
    cfg = AlertsConfig(system_levels={"wan": 2})
    bulk = AlertStore(db_url, cfg, trail=TrailConfig(key_file=tmp_path / "bulk.key"))
    ref = AlertStore(_second_url(db_url), cfg, trail=TrailConfig(key_file=tmp_path / "ref.key"))
    yield bulk, ref
    bulk.close()
    ref.close()


def item(n: int, status: str = "firing", at: datetime = T0, host: str = "",
         name: str = "WanLinkDown", **labels: str) -> dict[str, Any]:
    lab = {"alertname": name, "severity": ("critical", "high", "warning", "info")[n % 4],
           "instance": host or f"rtr{n}", "site": f"xa_{n % 7}", "system": "wan", **labels}
    return {"status": status, "fingerprint": f"{n:016x}", "startsAt": at.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "labels": lab,
            "annotations": {"summary": f"link down {n}", "description": "no carrier"}}


def body(*items: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "dcops", "groupKey": "{}:{}",
            "alerts": list(items)}


def snapshot(store: AlertStore) -> dict[str, Any]:
    """Everything the two paths must agree on (times and HMACs left out)."""
    audit = [(r.seq, r.actor, r.action, r.target,
              {k: v for k, v in r.detail.items() if not k.endswith(("_at", "_end"))}  # windows'
              if isinstance(r.detail, dict) else r.detail) for r in store.audit_records()]
    with store.engine.connect() as conn:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql))]

        return {"audit": audit,
            "alerts": rows("SELECT id, source, rule_id, rule_title, severity, status, dedup_key,"
                           " site, system, system_level, host, source_ip, first_seen, last_seen,"
                           " count, tags, labels, description, fingerprint, assignee,"
                           " incident_id, acked_at IS NULL, resolved_at IS NULL,"
                           " change_window_id FROM alerts ORDER BY id"),
            "incidents": rows("SELECT id, title, status, merged_into, group_host,"
                              " group_source_ip, severity, change_window_id"
                              " FROM incidents ORDER BY id"),
            "detections": rows("SELECT detection_id, alert_id FROM alert_detections"
                               " ORDER BY detection_id"),
            "notes": rows("SELECT alert_id, author, text FROM alert_notes ORDER BY id"),
        }


def feed(pair: tuple[AlertStore, AlertStore], *bodies: dict[str, Any]) -> list[IngestResult]:
    """Each body through both paths; the results and the stores must be the same."""
    bulk, ref = pair
    got = []
    for b in bodies:
        r1 = ingest_webhook(bulk, b)
        r2 = ingest_webhook_per_alert(ref, b)
        assert r1 == r2, b
        got.append(r1)
    assert snapshot(bulk) == snapshot(ref)
    for s in pair:
        v = s.verify_audit()
        assert v.ok, v.problems
    return got


def test_outage_bodies_equal_per_alert_path(pair: tuple[AlertStore, AlertStore]) -> None:
    r = feed(pair, *(body(*(item(n, at=T0 + timedelta(seconds=n)) for n in range(k, k + 50)))
                     for k in range(0, 150, 50)))
    assert [x.created for x in r] == [50, 50, 50]
    assert len(pair[0].query(AlertFilter(limit=1000))) == 150


def test_repeated_notifications_change_nothing(pair: tuple[AlertStore, AlertStore]) -> None:
    b = body(*(item(n) for n in range(10)))
    r = feed(pair, b, b, body(item(3), item(3), item(11), item(11)))
    assert (r[1].unchanged, r[1].created) == (10, 0)
    assert (r[2].unchanged, r[2].created) == (3, 1)


def test_dedup_in_window_same_body_and_later(pair: tuple[AlertStore, AlertStore]) -> None:
    # The same fingerprint started again (new detection id) inside the window: count goes up,
    # also when both starts are in one body; outside the window a new alert is made.
    r = feed(pair,
             body(item(1), item(1, at=T0 + timedelta(minutes=5)), item(2)),
             body(item(1, at=T0 + timedelta(minutes=10)), item(2, at=T0 - timedelta(minutes=3))),
             body(item(1, at=T0 + timedelta(days=3))))
    assert (r[0].created, r[0].updated) == (2, 1)
    assert r[1].updated == 2
    counts = sorted(a.count for a in pair[0].query(AlertFilter(limit=100)))
    assert counts == [1, 2, 3]


def test_grouping_by_host_in_body_and_with_stored(pair: tuple[AlertStore, AlertStore]) -> None:
    feed(pair,
         body(item(1, host="core-sw1"), item(2, host="core-sw1"), item(3, host="edge"),
              item(4, name="Other", host="core-sw1")),
         body(item(5, host="core-sw1"), item(6, host="edge"), item(7, host="new")))
    alerts = pair[0].query(AlertFilter(limit=100))
    by_host: dict[str, set[int | None]] = {}
    for a in alerts:
        by_host.setdefault(a.host, set()).add(a.incident_id)
    assert all(len(v) == 1 for v in by_host.values())
    assert len({i for v in by_host.values() for i in v}) == 3


def test_an_outage_body_is_decided_in_bulk_alone(pair: tuple[AlertStore, AlertStore],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bulk path is for (one severity per host, no change window) never goes per
    alert; a body it cannot decide alone (a host's alerts of two severities) does."""
    from dcops.alerts import bridge

    calls: list[str] = []
    per_alert = bridge._ingest_one

    def counted(*args: Any) -> int | None:
        calls.append(args[2]["fingerprint"])
        return per_alert(*args)

    monkeypatch.setattr(bridge, "_ingest_one", counted)
    bulk = pair[0]
    ingest_webhook(bulk, body(*(item(4 * n, at=T0 + timedelta(seconds=n)) for n in range(50))))
    assert calls == []
    ingest_webhook(bulk, body(item(1, host="core-sw1"), item(2, host="core-sw1")))
    assert len(calls) == 2


def test_change_windows_in_bulk_equal_per_alert(pair: tuple[AlertStore, AlertStore]) -> None:
    """A body on a change window's host is decided per alert (matched, the window's incident,
    its policy); once the window is long closed, a later body dedups with none of the window's
    alerts and joins none of its incidents, in bulk as per alert."""
    from dataclasses import replace

    for s in pair:
        s.config = replace(s.config, changes=replace(s.config.changes, default="group"))
        s.changes.open("CHG-7", ["core-sw1"], "ops")
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)  # after the opening
    feed(pair, body(item(1, at=t, host="core-sw1"), item(5, at=t, host="core-sw1"),
                    item(2, at=t, host="edge")))
    alerts = {a.fingerprint: a for a in pair[0].query(AlertFilter(limit=10))}
    assert alerts[f"{1:016x}"].change_window_id is not None
    assert alerts[f"{2:016x}"].change_window_id is None
    day = timedelta(days=1)
    for s in pair:
        s.changes.close("ops", ticket="CHG-7")
        with s.engine.begin() as conn:
            conn.execute(text("UPDATE change_windows SET opened_at = :o, closes_at = :c,"
                              " closed_at = :c"), {"o": iso(t - 2 * day), "c": iso(t - day)})
    feed(pair, body(item(1, at=t + timedelta(minutes=1), host="core-sw1"),
                    item(9, at=t + timedelta(minutes=1), host="core-sw1")))
    again = [a for a in pair[0].query(AlertFilter(limit=10)) if a.change_window_id is None
             and a.host == "core-sw1"]
    assert len(again) == 2 and len({a.incident_id for a in again}) == 1
    windowed = {a.incident_id for a in pair[0].query(AlertFilter(limit=10))
                if a.change_window_id is not None}
    assert not windowed & {a.incident_id for a in again}


def test_resolved_items_mixed_with_firing(pair: tuple[AlertStore, AlertStore]) -> None:
    feed(pair, body(*(item(n, host="sw") for n in range(6))))
    r = feed(pair,
             body(item(1, "resolved", host="sw"), item(9, "resolved"), item(7, host="sw"),
                  item(2, "resolved", host="sw"), item(1, at=T0 + timedelta(minutes=1),
                                                     host="sw")),
             body(item(1, "resolved", host="sw")))
    assert (r[0].resolved, r[0].unchanged, r[0].created) == (2, 1, 2)
    assert r[1].resolved == 1


def test_sigma_alert_with_same_host_shares_incident(pair: tuple[AlertStore, AlertStore]) -> None:
    for s in pair:
        s.accept([Detection(rule_id="r1", rule_title="t", severity="high", timestamp=T0,
                            event_ids=("e1",), key="k", host="rtr1", site="x", system="wan")])
    feed(pair, body(item(1), item(2)))
    got = pair[0].query(AlertFilter(limit=10))
    a = {x.host: x.incident_id for x in got if x.source == "alertmanager"}
    sigma = next(x for x in got if x.source == "sigma")
    assert a["rtr1"] == sigma.incident_id != a["rtr2"]


@pytest.mark.parametrize(("breaks", "field"), [
    (lambda b: b["alerts"][3].pop("fingerprint"), r"alerts\[3\]\.fingerprint"),
    (lambda b: b["alerts"][2].__setitem__("status", "pending"), r"alerts\[2\]\.status"),
    (lambda b: b["alerts"][4].__setitem__("labels", []), r"alerts\[4\]\.labels"),
])
def test_bad_item_rejects_whole_body(pair: tuple[AlertStore, AlertStore],
                                     breaks: Callable[[dict[str, Any]], object],
                                     field: str) -> None:
    b = body(*(item(n) for n in range(5)))
    breaks(b)
    with pytest.raises(WebhookPayloadError, match=field):
        ingest_webhook(pair[0], b)
    assert pair[0].query() == []
    assert pair[0].audit_records() == []


def test_bad_time_rejects_whole_body(pair: tuple[AlertStore, AlertStore]) -> None:
    b = body(item(0), item(1))
    b["alerts"][1]["startsAt"] = "yesterday"
    with pytest.raises(WebhookPayloadError, match=r"alerts\[1\]\.startsAt"):
        ingest_webhook(pair[0], b)
    assert pair[0].query() == [] and pair[0].audit_records() == []


def test_nul_text_is_stored_visibly_and_holds_no_alert_back(
        pair: tuple[AlertStore, AlertStore]) -> None:
    # PostgreSQL's text type refuses NUL: unmade storable, one such label would fail the body's
    # transaction and Alertmanager would retry it (and its good alerts) forever.
    bad = item(1, host="rtr\x001")
    bad["annotations"] = {"summary": "down\x00", "description": "x\x00y"}
    bad["fingerprint"] = "00000000\x0000001"
    bad["labels"]["ro\x00le"] = "edge"
    r = feed(pair, body(item(0), bad, item(2)))
    assert r[0].created == 3
    got = {a.host: a for a in pair[0].query(AlertFilter(limit=10))}
    assert set(got) == {"rtr0", "rtr\ufffd1", "rtr2"}
    odd = got["rtr\ufffd1"]
    assert (odd.rule_title, odd.description) == ("down\ufffd", "x\ufffdy")
    assert odd.labels["ro\ufffdle"] == "edge"
    # Sigma detections carry event text (a syslog line is whatever its sender chose).
    pair[0].accept([Detection(rule_id="r1", rule_title="t\x00", severity="high", timestamp=T0,
                              event_ids=("e1",), key="k\x00", host="h\x00")])
    assert any(a.host == "h\ufffd" for a in pair[0].query(AlertFilter(limit=10)))


def test_annotations_not_a_mapping_is_named(pair: tuple[AlertStore, AlertStore]) -> None:
    b = body(item(0), item(1))
    b["alerts"][1]["annotations"] = ["summary"]
    with pytest.raises(WebhookPayloadError, match=r"alerts\[1\]\.annotations"):
        ingest_webhook(pair[0], b)
    assert pair[0].query() == []


def test_trail_tamper_after_bulk_is_found(pair: tuple[AlertStore, AlertStore]) -> None:
    bulk = pair[0]
    ingest_webhook(bulk, body(*(item(n) for n in range(20))))
    with bulk.engine.begin() as conn:
        if bulk.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit_log SET detail = '{}' WHERE seq = 7"))
    v = bulk.verify_audit()
    assert not v.ok and v.first_bad == 7


def test_sla_in_sql_equals_sla_report(pair: tuple[AlertStore, AlertStore]) -> None:
    """The console's /sla figures (dcops.alerts.slasql) equal sla_report over the same alerts."""
    from dcops.alerts.sla import sla_report
    from dcops.alerts.slasql import sla_rows

    store = pair[0]
    ingest_webhook(store, body(*(item(n, at=T0 + timedelta(minutes=n)) for n in range(40))))
    ids = [a.id for a in store.query(AlertFilter(limit=100))]
    for k, alert_id in enumerate(ids):
        if k % 3 == 0:
            store.acknowledge(alert_id, "ana")
        if k % 4 == 0:
            store.resolve(alert_id, "ana", false_positive=k % 8 == 0)
    with store.engine.begin() as conn:  # spread the lifecycle times over minutes and hours
        for k, alert_id in enumerate(ids):
            # fractions next to a whole second too (.99999x): a conversion that rounds the
            # fraction (SQLite's unixepoch() of the whole form does) must show here
            created = T0 + timedelta(seconds=37 * k, microseconds=999_990 + k % 9 if k % 2 else k)
            conn.execute(text("UPDATE alerts SET created_at = :c, acked_at = CASE WHEN acked_at"
                              " IS NULL THEN NULL ELSE :a END, resolved_at = CASE WHEN"
                              " resolved_at IS NULL THEN NULL ELSE :r END WHERE id = :i"),
                         {"c": iso(created),
                          "a": iso(created + timedelta(seconds=300 * k, microseconds=11)),
                          "r": iso(created + timedelta(seconds=900 * k + 1, microseconds=13)),
                          "i": alert_id})
    at = T0 + timedelta(hours=30)
    expected = sla_report(store.sla_inputs(), store.config, at)
    with store.engine.connect() as conn:
        got = sla_rows(conn, store.config, at)
        assert sla_rows(conn, store.config, at, limit=10) != got  # the newest 10 only
    assert [r.severity for r in got] == [r.severity for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert (g.alerts, g.open, g.ack_breaches, g.resolve_breaches, g.overdue, g.p90_ack_s,
                g.p90_resolve_s) == (e.alerts, e.open, e.ack_breaches, e.resolve_breaches,
                                     e.overdue, e.p90_ack_s, e.p90_resolve_s), (g, e)
        for x, y in ((g.mean_ack_s, e.mean_ack_s), (g.mean_resolve_s, e.mean_resolve_s)):
            assert x == pytest.approx(y, abs=1e-6)


def test_an_snmp_alert_is_about_its_device_not_the_poller(
        pair: tuple[AlertStore, AlertStore]) -> None:
    """Every SNMP alert has the poller as `instance`; as the host it grouped a province's SNMP
    alerts into one incident. The device label names the host; `instance` only when alone."""
    feed(pair, body(item(1, device="xa-a-rtr1", instance="127.0.0.1:9716"),
                    item(5, device="xa-b-rtr1", instance="127.0.0.1:9716"),
                    item(9, instance="127.0.0.1:9719", name="IntakeCollectorDown")))
    alerts = pair[0].query(AlertFilter(limit=10))
    assert sorted(a.host for a in alerts) == ["127.0.0.1:9719", "xa-a-rtr1", "xa-b-rtr1"]
    assert len({a.incident_id for a in alerts}) == 3
