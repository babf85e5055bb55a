"""The alert store suite: dedup, idempotence, incidents, lifecycle, audit chain, AM bridge.

Every test here takes the `store` fixture built from `db_url`, so the same suite runs on SQLite
(tests/unit/alerts/conftest.py) and on a real PostgreSQL (tests/integration/alerts/).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dcops.alerts import (
    AlertFilter,
    AlertsConfig,
    AlertStore,
    LifecycleError,
    Status,
    Users,
    WebhookPayloadError,
    ingest_webhook,
)
from dcops.alerts.trail import TrailConfig
from dcops.errors import AlertStoreError
from dcops.model.event import Detection

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


class FakeSilencer:
    """Records silences in memory (the real Alertmanager is in the integration tests)."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.expired: list[str] = []

    def create(self, matchers: list[dict[str, Any]], starts: datetime, ends: datetime,
               created_by: str, comment: str) -> str:
        self.created.append({"matchers": matchers, "ends": ends, "by": created_by})
        return f"sil-{len(self.created)}"

    def expire(self, silence_id: str) -> None:
        self.expired.append(silence_id)


@pytest.fixture
def silencer() -> FakeSilencer:
    return FakeSilencer()


@pytest.fixture
def trail(tmp_path: Path) -> TrailConfig:
    """The trail's HMAC key file (outside the database, whichever database it is)."""
    return TrailConfig(key_file=tmp_path / "trail.key")


@pytest.fixture
def store(db_url: str, silencer: FakeSilencer, trail: TrailConfig) -> Iterator[AlertStore]:
    cfg = AlertsConfig(system_levels={"lgsp": 3})
    s = AlertStore(db_url, cfg, silencer=silencer, trail=trail)
    yield s
    s.close()


def tamper(store: AlertStore, sql: str) -> None:
    """Change the trail as someone with database access (on PostgreSQL a superuser switching the
    append-only trigger off for the session; the application role cannot do even that)."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(sql))


def det(rule: str = "r-ssh-brute", key: str = "web01", events: tuple[str, ...] = ("e1",),
        at: datetime = T0, host: str = "web01", src: str = "", **kw: Any) -> Detection:
    fields = {"source.ip": src} if src else {}
    return Detection(rule_id=rule, rule_title=f"title {rule}", severity=kw.pop("severity", "high"),
                     timestamp=at, event_ids=events, key=key, host=host, site="bien_hoa",
                     system="lgsp", tags=("attack.t1110", "attack.credential_access"),
                     fields=fields, **kw)


def am_payload(status: str, fingerprint: str = "abc123", starts: str = "2026-11-22T03:00:00Z",
               **labels: str) -> dict[str, Any]:
    lab = {"alertname": "SnmpDeviceDown", "severity": "critical", "instance": "core-sw1",
           "site": "bien_hoa", **labels}
    return {"version": "4", "groupKey": "{}:{}", "status": status, "receiver": "dcops",
            "groupLabels": {}, "commonLabels": lab, "commonAnnotations": {}, "externalURL": "",
            "truncatedAlerts": 0,
            "alerts": [{"status": status, "labels": lab,
                        "annotations": {"summary": "device down", "description": "no SNMP"},
                        "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": fingerprint}]}


def test_detection_creates_alert_with_all_fields(store: AlertStore) -> None:
    store.accept([det(events=("e1", "e2"))])
    [a] = store.query()
    assert (a.rule_id, a.severity, a.status, a.site, a.system, a.host) == (
        "r-ssh-brute", "high", "new", "bien_hoa", "lgsp", "web01")
    assert a.system_level == 3
    assert a.tags == ["attack.t1110", "attack.credential_access"]
    assert a.count == 1
    assert a.first_seen == a.last_seen == "2026-11-22T03:00:00.000000Z"
    full = store.get(a.id)
    assert full is not None
    assert full.event_ids == ["e1", "e2"]


def test_correlation_source_address_comes_from_its_group(store: AlertStore) -> None:
    brute = Detection(rule_id="r-brute", rule_title="SSH Brute Force", severity="high",
                      timestamp=T0, event_ids=("e1", "e2"), key="source.ip=10.78.1.50",
                      host="web01", fields={"group": {"source.ip": "10.78.1.50",
                                                      "host.name": "web01"}, "count": 12})
    store.accept([brute])
    [a] = store.query()
    assert a.source_ip == "10.78.1.50"


def test_same_detection_twice_changes_nothing(store: AlertStore) -> None:
    d = det()
    store.accept([d])
    before = store.audit_records()
    store.accept([d, d])
    [a] = store.query()
    assert a.count == 1
    assert store.audit_records() == before


def test_dedup_inside_window_updates_count_and_last_seen(store: AlertStore) -> None:
    store.accept([det(events=("e1",))])
    store.accept([det(events=("e2",), at=T0 + timedelta(minutes=10))])
    [a] = store.query()
    assert a.count == 2
    assert a.last_seen == "2026-11-22T03:10:00.000000Z"
    assert a.first_seen == "2026-11-22T03:00:00.000000Z"
    full = store.get(a.id)
    assert full is not None
    assert full.event_ids == ["e1", "e2"]


def test_outside_window_or_other_key_creates_new_alert(store: AlertStore) -> None:
    store.accept([det(events=("e1",))])
    store.accept([det(events=("e2",), at=T0 + timedelta(hours=2))])
    store.accept([det(key="db01", host="db01", events=("e3",))])
    assert len(store.query()) == 3


def test_closed_alert_is_not_reused_by_dedup(store: AlertStore) -> None:
    store.accept([det(events=("e1",))])
    [a] = store.query()
    store.resolve(a.id, "ana")
    store.accept([det(events=("e2",), at=T0 + timedelta(minutes=1))])
    assert len(store.query()) == 2


def test_incident_groups_same_host_and_same_source(store: AlertStore) -> None:
    store.accept([det(rule="r1", key="k1", host="web01", events=("e1",))])
    store.accept([det(rule="r2", key="k2", host="web01", events=("e2",))])
    store.accept([det(rule="r3", key="k3", host="db01", src="10.0.0.9", events=("e3",))])
    store.accept([det(rule="r4", key="k4", host="", src="10.0.0.9", events=("e4",))])
    store.accept([det(rule="r5", key="k5", host="dns01", events=("e5",))])
    by_rule = {a.rule_id: a.incident_id for a in store.query()}
    assert by_rule["r1"] == by_rule["r2"]
    assert by_rule["r3"] == by_rule["r4"]
    assert len({by_rule["r1"], by_rule["r3"], by_rule["r5"]}) == 3


def test_merge_and_split_incidents(store: AlertStore) -> None:
    store.accept([det(rule="r1", key="k1", host="a", events=("e1",))])
    store.accept([det(rule="r2", key="k2", host="b", events=("e2",))])
    store.accept([det(rule="r3", key="k3", host="b", events=("e3",))])
    ids = {a.rule_id: a for a in store.query()}
    inc_a, inc_b = ids["r1"].incident_id, ids["r2"].incident_id
    assert inc_a is not None and inc_b is not None and inc_a != inc_b
    store.merge_incidents(inc_a, [inc_b], "ana")
    merged = store.incident(inc_a)
    assert merged is not None
    assert set(merged.alert_ids) == {ids["r1"].id, ids["r2"].id, ids["r3"].id}
    gone = store.incident(inc_b)
    assert gone is not None and gone.status == "merged" and gone.merged_into == inc_a
    new = store.split_incident([ids["r3"].id], "ana")
    split = store.incident(new)
    assert split is not None and split.alert_ids == (ids["r3"].id,)
    again = store.incident(inc_a)
    assert again is not None and ids["r3"].id not in again.alert_ids
    with pytest.raises(AlertStoreError, match="incident 999"):
        store.merge_incidents(999, [inc_a], "ana")


def test_lifecycle_and_assignee_and_notes(store: AlertStore) -> None:
    store.accept([det()])
    [a] = store.query()
    store.acknowledge(a.id, "ana")
    store.assign(a.id, "binh", "ana")
    store.transition(a.id, Status.INVESTIGATING, "binh", note="looking at auth.log")
    store.add_note(a.id, "binh", "password spray from one address")
    store.resolve(a.id, "binh", note="blocked at the firewall")
    got = store.get(a.id)
    assert got is not None
    assert (got.status, got.assignee) == ("resolved", "binh")
    assert got.acked_at is not None and got.resolved_at is not None
    assert [n.text for n in store.notes(a.id)] == [
        "looking at auth.log", "password spray from one address", "blocked at the firewall"]
    actions = [r.action for r in store.audit_records(target=f"alert:{a.id}")]
    assert actions == ["alert.create", "alert.acknowledged", "alert.assign",
                       "alert.investigating", "alert.note", "alert.resolved"]
    who = [r.actor for r in store.audit_records(target=f"alert:{a.id}")]
    assert who == ["detect", "ana", "ana", "binh", "binh", "binh"]


def test_lifecycle_refuses_illegal_transition(store: AlertStore) -> None:
    store.accept([det()])
    [a] = store.query()
    store.resolve(a.id, "ana", false_positive=True)
    with pytest.raises(LifecycleError, match="false_positive"):
        store.acknowledge(a.id, "ana")
    with pytest.raises(AlertStoreError, match="alert 4242 does not exist"):
        store.acknowledge(4242, "ana")


def test_filters_and_counts(store: AlertStore) -> None:
    store.accept([det(rule="r1", key="1", host="h1", events=("e1",), severity="critical")])
    store.accept([det(rule="r2", key="2", host="h2", events=("e2",), severity="low",
                      at=T0 + timedelta(hours=3))])
    store.accept([Detection("r3", "t", "medium", T0, ("e3",), key="3", host="h3",
                            site="long_khanh", system="portal")])
    assert [a.rule_id for a in store.query(AlertFilter(severity=["critical"]))] == ["r1"]
    assert [a.rule_id for a in store.query(AlertFilter(site=["long_khanh"]))] == ["r3"]
    assert [a.rule_id for a in store.query(AlertFilter(system=["portal"]))] == ["r3"]
    assert [a.rule_id for a in store.query(AlertFilter(since="2026-11-22T04:00:00.000000Z"))] \
        == ["r2"]
    assert [a.rule_id for a in store.query(AlertFilter(since="2026-11-22T11:00:00+07:00"))] \
        == ["r2"]
    store.acknowledge(store.query(AlertFilter(severity=["low"]))[0].id, "ana")
    assert [a.rule_id for a in store.query(AlertFilter(status=["acknowledged"]))] == ["r2"]
    c = store.counts()
    assert c["severity"] == {"critical": 1, "low": 1, "medium": 1}
    assert c["site"] == {"bien_hoa": 2, "long_khanh": 1}


def test_audit_chain_verifies_and_detects_edit(store: AlertStore) -> None:
    store.accept([det()])
    [a] = store.query()
    store.acknowledge(a.id, "ana")
    store.add_note(a.id, "ana", "first note")
    ok = store.verify_audit()
    assert ok.ok and ok.checked == 3
    tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    bad = store.verify_audit()
    assert not bad.ok
    assert bad.first_bad == 2


def test_audit_chain_detects_deleted_record(store: AlertStore) -> None:
    store.accept([det(events=("e1",)), det(key="x", host="x", events=("e2",))])
    store.add_note(store.query()[0].id, "ana", "n")
    tamper(store, "DELETE FROM audit_log WHERE seq = 2")
    bad = store.verify_audit()
    assert not bad.ok and bad.first_bad == 2
    tamper(store, "DELETE FROM audit_log WHERE seq = 3")
    tail = store.verify_audit()
    assert not tail.ok and tail.first_bad == 2


def test_alertmanager_firing_then_resolved(store: AlertStore, silencer: FakeSilencer) -> None:
    r = ingest_webhook(store, am_payload("firing"))
    assert r.created == 1
    r2 = ingest_webhook(store, am_payload("firing"))  # repeat notification
    assert r2.unchanged == 1
    [a] = store.query()
    assert (a.source, a.severity, a.host, a.rule_title, a.count) == (
        "alertmanager", "critical", "core-sw1", "device down", 1)
    sil = store.silence(a.id, "eng", comment="maintenance")
    assert sil.am_silence_id == "sil-1"
    assert {"name": "alertname", "value": "SnmpDeviceDown", "isRegex": False,
            "isEqual": True} in silencer.created[0]["matchers"]
    r3 = ingest_webhook(store, am_payload("resolved"))
    assert r3.resolved == 1
    got = store.get(a.id)
    assert got is not None and got.status == "resolved"
    assert silencer.expired == ["sil-1"]
    assert store.silences(a.id)[0].state == "expired"
    assert store.audit_records(target=f"alert:{a.id}")[-2].actor == "alertmanager"
    assert store.verify_audit().ok


def test_alertmanager_refiring_after_resolve_is_new_alert(store: AlertStore) -> None:
    ingest_webhook(store, am_payload("firing"))
    ingest_webhook(store, am_payload("resolved"))
    ingest_webhook(store, am_payload("firing", starts="2026-11-22T03:30:00Z"))
    assert sorted(a.status for a in store.query()) == ["new", "resolved"]


def test_webhook_payload_errors_name_the_field(store: AlertStore) -> None:
    with pytest.raises(WebhookPayloadError, match="version"):
        ingest_webhook(store, {"version": "3", "alerts": []})
    bad = am_payload("firing")
    del bad["alerts"][0]["fingerprint"]
    with pytest.raises(WebhookPayloadError, match=r"alerts\[0\]\.fingerprint"):
        ingest_webhook(store, bad)


def test_silence_refused_for_sigma_alert(store: AlertStore) -> None:
    store.accept([det()])
    [a] = store.query()
    with pytest.raises(AlertStoreError, match="only Alertmanager alerts"):
        store.silence(a.id, "eng")


def test_users_argon2_and_roles(store: AlertStore) -> None:
    users = Users(store.engine)
    users.add("ana", "correct horse", "analyst", "admin")
    assert users.authenticate("ana", "correct horse") is not None
    assert users.authenticate("ana", "wrong password") is None
    assert users.authenticate("nobody", "correct horse") is None
    with store.engine.connect() as conn:
        h = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert h.startswith("$argon2")
    with pytest.raises(AlertStoreError, match="unknown role"):
        users.add("x", "12345678", "root", "admin")
    users.set_disabled("ana", True, "admin")
    assert users.authenticate("ana", "correct horse") is None
    assert [r.action for r in store.audit_records()] == ["user.add", "user.disable"]


def test_reopening_store_keeps_data_and_schema(store: AlertStore, db_url: str,
                                               trail: TrailConfig) -> None:
    store.accept([det()])
    again = AlertStore(db_url, trail=trail)
    try:
        assert len(again.query()) == 1
        assert again.verify_audit().ok
    finally:
        again.close()


def test_concurrent_writers_keep_one_valid_chain(store: AlertStore) -> None:
    import threading

    store.accept([det()])
    [a] = store.query()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                store.add_note(a.id, f"user{n}", f"note {i}")
                store.accept([det(events=(f"e-{n}-{i}",), at=T0 + timedelta(seconds=i))])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], [repr(e) for e in errors]
    result = store.verify_audit()
    assert result.ok, result.reason
    assert result.checked == 1 + 4 * 8 * 2
    [again] = store.query()
    assert again.count == 1 + 4 * 8


def test_migrations_build_exactly_the_schema(db_url: str) -> None:
    """Alembic's autogenerate finds nothing to change after upgrade: migrations and schema.py
    cannot drift (tables, columns, types, nullability, indexes, foreign keys)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dcops.alerts import schema
    from dcops.alerts.db import open_engine

    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, schema.metadata)
            assert ctx.get_current_revision() is not None
    finally:
        engine.dispose()
    assert diff == [], f"migrations and dcops/alerts/schema.py differ: {diff}"


def test_migration_check_sees_a_drift(db_url: str) -> None:
    """The comparison above is not vacuous: a column missing from the database is reported."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import Column, MetaData, String, Table

    from dcops.alerts import schema
    from dcops.alerts.db import open_engine

    drifted = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(drifted)
    Table("alerts", drifted, Column("ticket", String(40)), extend_existing=True)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), drifted)
    finally:
        engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "alerts", "ticket")]


def test_a_long_read_does_not_hold_the_write_lock(store: AlertStore) -> None:
    # Every SQLite transaction here began IMMEDIATE (the write lock), reads too: the console's
    # trail walk (seconds at 100,000 records) held back the webhook and every other view.
    from dcops.alerts.db import reading

    def fail_fast(c: Any) -> None:  # a lock waited for fails in 0.2 s, not the store's 30 s
        if store.engine.dialect.name == "sqlite":
            c.connection.driver_connection.execute("PRAGMA busy_timeout = 200")

    store.accept([det(key="a")])
    with reading(store.engine) as conn:
        fail_fast(conn)
        before = conn.execute(text("SELECT count(*) FROM alerts")).scalar_one()
        with store.engine.connect() as other:  # a writer meanwhile, on its own connection
            fail_fast(other)
            other.execute(text("UPDATE alerts SET assignee = 'ana'"))
            other.commit()
        # the reader's snapshot is unchanged (WAL): it still reads what it began with
        assert conn.execute(text("SELECT count(*) FROM alerts")).scalar_one() == before
    assert store.query()[0].assignee == "ana"


def test_read_helpers_answer_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    # The console's per-request reads (session check, token and OS-user lookups, users, notes,
    # incidents, silences, change windows, throttle locks) began IMMEDIATE on SQLite like writes:
    # one long write made every page wait for the lock. They go through db.reading now.
    import sqlite3
    import threading

    from dcops.alerts import ChangeWindows, Users
    from dcops.alerts.credentials import OsUsers, Tokens
    from dcops.alerts.sessions import Sessions
    from dcops.alerts.throttle import LoginThrottle

    s = AlertStore(f"sqlite:///{tmp_path / 'a.db'}", trail=TrailConfig(key_file=tmp_path / "k"))
    try:
        s.accept([det(key="a")])
        alert_id = s.query()[0].id
        users = Users(s.engine)
        users.add("ana", "a-long-passphrase-1", "analyst", actor="test")
        reads: dict[str, Any] = {
            "notes": lambda: s.notes(alert_id),
            "incidents": s.incidents,
            "incident_count": s.incident_count,
            "silences": s.silences,
            "users": users.list_users,
            "authenticate": lambda: users.authenticate("ana", "wrong"),
            "session": lambda: Sessions(s.engine).role("ana", "no-such-session"),
            "tokens": lambda: Tokens(s.engine).list(),
            "token": lambda: Tokens(s.engine).verify("dcops_x.y"),
            "os_user": lambda: OsUsers(s.engine).lookup("root@web01"),
            "changes": lambda: ChangeWindows(s.engine).list(),
            "change": lambda: ChangeWindows(s.engine).get(1),
            "locks": lambda: LoginThrottle(s.engine).locks(),
        }
        writer = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE alerts SET assignee = 'ana'")
        done: dict[str, BaseException | None] = {}

        def run() -> None:
            for name, read in reads.items():
                try:
                    read()
                    done[name] = None
                except BaseException as exc:
                    done[name] = exc

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout=10)  # a read that waits for the lock waits the store's 30 s busy timeout
        in_time = set(done)
        writer.execute("ROLLBACK")
        writer.close()
        t.join(timeout=60)
        assert [n for n in reads if n not in in_time] == [], "these waited for the write lock"
        assert {n: e for n, e in done.items() if e is not None} == {}
    finally:
        s.close()
