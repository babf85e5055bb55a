"""Change windows: matching by host, account, time and grace; each policy; never dropped; trail.

Every test takes the `store` fixture built from `db_url`, so the suite also runs on PostgreSQL
(tests/integration/alerts/test_change_windows_postgres.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dcops.alerts import AlertFilter, AlertsConfig, AlertStore, ChangeWindow, ingest_webhook
from dcops.alerts.changes import accounts_of
from dcops.alerts.config import ChangesConfig
from dcops.alerts.timeutil import parse
from dcops.alerts.trail import TrailConfig
from dcops.errors import AlertStoreError
from dcops.model.event import Detection

LAB = ("lab-app1", "lab-db1", "lab-backup1", "lab-mon1", "lab-ca1")
USER_CREATED = "New Local User Account Created"
NEW_ACCOUNT_LOGIN = "SSH Login By A Newly Created Account"


def _store(db_url: str, tmp_path: Path, changes: ChangesConfig | None = None) -> AlertStore:
    cfg = AlertsConfig(changes=changes or ChangesConfig())
    return AlertStore(db_url, cfg, trail=TrailConfig(key_file=tmp_path / "trail.key"))


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[AlertStore]:
    s = _store(db_url, tmp_path)
    yield s
    s.close()


def user_created(host: str, account: str, at: datetime, n: int = 0) -> Detection:
    """What the demo's playbook makes: useradd on a lab host (medium)."""
    return Detection(rule_id="50cd229e-fd64-4661-9a66-2e3b10526768", rule_title=USER_CREATED,
                     severity="medium", timestamp=at, event_ids=(f"uc-{host}-{account}-{n}",),
                     key=f"{host}:{account}", host=host, site="dc1", system="lgsp",
                     fields={"event.action": "user_created", "user.target.name": account,
                             "host.name": host})


def new_account_login(host: str, account: str, at: datetime) -> Detection:
    """The correlation: created, then logged in over SSH (high); its group names the account."""
    return Detection(rule_id="8ffad53c-2d92-4df9-81c1-0aae31b565e3",
                     rule_title=NEW_ACCOUNT_LOGIN, severity="high", timestamp=at,
                     event_ids=(f"nl-{host}-{account}",), key=f"{account},{host}", host=host,
                     fields={"group": {"account": account, "host.name": host}})


def brute_force(at: datetime, n: int = 0) -> Detection:
    """The demo's scenario: SSH brute force on lab-app1 from a ward office address (medium)."""
    return Detection(rule_id="dcops_sshd_brute_force", rule_title="SSH Brute Force From One Source",
                     severity="medium", timestamp=at, event_ids=(f"bf-{n}",),
                     key="10.78.1.50", host="lab-app1",
                     fields={"group": {"source.ip": "10.78.1.50"}})


def login_after_failures(at: datetime) -> Detection:
    return Detection(rule_id="dcops_sshd_success_after_failures",
                     rule_title="SSH Login Success After Failures", severity="high",
                     timestamp=at, event_ids=("laf-1",), key="10.78.1.50", host="lab-app1",
                     fields={"group": {"source.ip": "10.78.1.50", "user.name": "ansible"}})


def _open(store: AlertStore, **kw: Any) -> ChangeWindow:
    args: dict[str, Any] = {"ticket": "CHG-1", "hosts": LAB, "actor": "os:ops",
                            "accounts": ("dcops-admin", "restic", "dcops")}
    args.update(kw)
    return store.changes.open(**args)


def _t(window: ChangeWindow, seconds: float = 1) -> datetime:
    return parse(window.opened_at) + timedelta(seconds=seconds)


def test_accounts_of_reads_ecs_windows_and_correlation_groups() -> None:
    assert accounts_of({"user.target.name": "restic", "user.name": "root"}) == ["restic", "root"]
    assert accounts_of({"TargetUserName": "svc"}) == ["svc"]
    assert accounts_of({"group": {"account": "restic"}}) == ["restic"]
    assert accounts_of({"source.ip": "10.0.0.1"}) == []


def test_demo_playbook_alerts_are_expected_and_the_brute_force_is_not(store: AlertStore) -> None:
    w = _open(store)
    store.accept([user_created(h, "dcops-admin", _t(w), n) for n, h in enumerate(LAB[:4])])
    store.accept([user_created("lab-backup1", "restic", _t(w, 2)),
                  new_account_login("lab-backup1", "restic", _t(w, 3))])
    store.accept([brute_force(_t(w, 4)), login_after_failures(_t(w, 5))])
    alerts = store.query(AlertFilter())
    assert len(alerts) == 8  # nothing dropped
    expected = [a for a in alerts if a.change_window_id == w.id]
    assert len(expected) == 6
    assert {a.status for a in expected} == {"resolved"}  # the default policy
    real = [a for a in alerts if a.change_window_id is None]
    assert {a.rule_title for a in real} == {"SSH Brute Force From One Source",
                                           "SSH Login Success After Failures"}
    assert {a.status for a in real} == {"new"}
    # The self-made alerts sit in the window's incident, the brute force in its own one,
    # titled by its most severe alert.
    window_incidents = {a.incident_id for a in expected}
    assert len(window_incidents) == 1
    inc = store.incident(window_incidents.pop())
    assert inc is not None and inc.title.endswith("CHG-1") and inc.change_window_id == w.id
    (real_incident,) = {a.incident_id for a in real}
    assert real_incident is not None
    ri = store.incident(real_incident)
    assert ri is not None and ri.title == "lab-app1: SSH Login Success After Failures"
    assert store.query(AlertFilter(status=["new"])) == sorted(real, key=lambda a: -a.id)


def test_expected_changes_stay_out_of_the_sla_figures(store: AlertStore) -> None:
    w = _open(store)
    store.accept([user_created("lab-app1", "restic", _t(w)), brute_force(_t(w, 1))])
    ids = {x.id for x in store.sla_inputs()}
    real = [a.id for a in store.query(AlertFilter()) if a.change_window_id is None]
    assert ids == set(real) and len(real) == 1


def test_resolve_policy_writes_the_trail(store: AlertStore) -> None:
    w = _open(store)
    store.accept([user_created("lab-app1", "restic", _t(w))])
    (a,) = store.query(AlertFilter())
    actions = [(r.actor, r.action, r.detail) for r in store.audit_records(f"alert:{a.id}")]
    assert [x[1] for x in actions] == ["alert.create", "alert.expected_change", "alert.resolved"]
    assert actions[1][2]["change"] == w.id and actions[1][2]["policy"] == "resolve"
    assert actions[2][0] == f"change:{w.id}" and "CHG-1" in actions[2][2]["note"]
    assert "CHG-1" in store.notes(a.id)[0].text
    opened = store.audit_records(f"change:{w.id}")
    assert [r.action for r in opened] == ["change.open"]
    assert opened[0].actor == "os:ops" and opened[0].detail["hosts"] == list(LAB)
    assert store.verify_audit().ok


def test_group_policy_keeps_it_open_in_the_window_incident(db_url: str, tmp_path: Path) -> None:
    with _store(db_url, tmp_path, ChangesConfig(default="group")) as store:
        w = _open(store)
        store.accept([user_created(h, "dcops-admin", _t(w), n) for n, h in enumerate(LAB)])
        alerts = store.query(AlertFilter())
        assert {a.status for a in alerts} == {"new"}
        assert {a.change_window_id for a in alerts} == {w.id}
        assert len({a.incident_id for a in alerts}) == 1
        a = alerts[0]
        assert [r.action for r in store.audit_records(f"alert:{a.id}")] == [
            "alert.create", "alert.expected_change"]


def test_per_rule_policy_by_title_or_id_glob(db_url: str, tmp_path: Path) -> None:
    changes = ChangesConfig(default="resolve", rules=(
        (NEW_ACCOUNT_LOGIN, "group"), ("dcops_sshd_*", "ignore_window")))
    with _store(db_url, tmp_path, changes) as store:
        w = _open(store, accounts=())  # any account on these hosts
        store.accept([user_created("lab-backup1", "restic", _t(w)),
                      new_account_login("lab-backup1", "restic", _t(w, 2)),
                      brute_force(_t(w, 3))])
        by_title = {a.rule_title: a for a in store.query(AlertFilter())}
        assert by_title[USER_CREATED].status == "resolved"
        assert by_title[NEW_ACCOUNT_LOGIN].status == "new"
        assert by_title[NEW_ACCOUNT_LOGIN].change_window_id == w.id
        bf = by_title["SSH Brute Force From One Source"]
        assert bf.change_window_id is None and bf.status == "new"


def test_account_host_and_time_must_all_match(store: AlertStore) -> None:
    w = _open(store, hosts=("lab-app1",), accounts=("restic",))
    store.accept([user_created("lab-app1", "mallory", _t(w)),  # another account
                  user_created("lab-db1", "restic", _t(w)),  # another host
                  user_created("lab-app1", "restic", _t(w, -60)),  # before it opened
                  user_created("LAB-APP1.lab.local", "restic", _t(w, 5))])  # same host, FQDN
    alerts = {(a.host, a.first_seen): a for a in store.query(AlertFilter())}
    assert len(alerts) == 4
    matched = [a for a in alerts.values() if a.change_window_id == w.id]
    assert [a.host for a in matched] == ["LAB-APP1.lab.local"]


def test_grace_after_close_then_no_more(store: AlertStore) -> None:
    w = _open(store, accounts=())
    (closed,) = store.changes.close("os:ops", window_id=w.id)
    end = parse(closed.closed_at or "")
    store.accept([user_created("lab-app1", "a", end + timedelta(minutes=9), 1),
                  user_created("lab-app2", "a", end + timedelta(minutes=9), 2),
                  user_created("lab-db1", "a", end + timedelta(minutes=11), 3)])
    got = {a.host: a.change_window_id for a in store.query(AlertFilter())}
    assert got == {"lab-app1": w.id, "lab-app2": None, "lab-db1": None}


def test_planned_end_bounds_an_unclosed_window(store: AlertStore) -> None:
    w = _open(store, accounts=(), duration=timedelta(minutes=30))
    late = parse(w.closes_at) + timedelta(minutes=20)  # past the end and its 10 min grace
    store.accept([user_created("lab-app1", "x", late)])
    assert store.query(AlertFilter())[0].change_window_id is None
    assert store.changes.active_at(late) == []
    assert [x.id for x in store.changes.active_at(_t(w))] == [w.id]


def test_dedup_never_mixes_expected_and_real(store: AlertStore) -> None:
    w = _open(store, hosts=("lab-app1",), accounts=("restic",))
    store.accept([user_created("lab-app1", "restic", _t(w), 1)])
    store.changes.close("os:ops", ticket="CHG-1")
    later = _t(w, 3600)
    store.accept([user_created("lab-app1", "restic", later, 2)])
    alerts = store.query(AlertFilter())
    assert len(alerts) == 2
    assert sorted((a.change_window_id or 0, a.status) for a in alerts) == [
        (0, "new"), (w.id, "resolved")]


def test_alertmanager_alert_on_a_window_host(store: AlertStore) -> None:
    w = _open(store, hosts=("core-sw1",), accounts=())
    starts = _t(w).strftime("%Y-%m-%dT%H:%M:%SZ")
    lab = {"alertname": "SnmpDeviceDown", "severity": "critical", "instance": "core-sw1"}
    ingest_webhook(store, {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": lab, "annotations": {"summary": "down"},
         "startsAt": starts, "fingerprint": "fp1"}]})
    (a,) = store.query(AlertFilter())
    assert a.change_window_id == w.id and a.status == "resolved"


def test_incident_title_follows_its_most_severe_alert(store: AlertStore) -> None:
    t = _t(_open(store, hosts=("elsewhere",)))
    store.accept([brute_force(t)])
    (a,) = store.query(AlertFilter())
    assert a.incident_id is not None
    inc = store.incident(a.incident_id)
    assert inc is not None and inc.title == "lab-app1: SSH Brute Force From One Source"
    store.accept([login_after_failures(t + timedelta(seconds=1))])
    inc = store.incident(a.incident_id)
    assert inc is not None and inc.title == "lab-app1: SSH Login Success After Failures"
    low = replace(brute_force(t + timedelta(seconds=2), 9), rule_id="low-rule",
                  rule_title="Low thing", severity="low")
    store.accept([low])
    inc = store.incident(a.incident_id)
    assert inc is not None and inc.title.endswith("After Failures") and len(inc.alert_ids) == 3
    retitles = store.audit_records(f"incident:{a.incident_id}")
    assert [r.action for r in retitles] == ["incident.retitle"]
    assert retitles[0].detail["severity"] == "high"


def test_open_validates_and_close_refuses_twice(store: AlertStore) -> None:
    with pytest.raises(AlertStoreError, match="at least one host"):
        store.changes.open("CHG-2", [], "os:ops")
    with pytest.raises(AlertStoreError, match="ticket"):
        store.changes.open(" ", ["h"], "os:ops")
    with pytest.raises(AlertStoreError, match="at most"):
        store.changes.open("CHG-2", ["h"], "os:ops", duration=timedelta(days=2))
    with pytest.raises(AlertStoreError, match="more than 0"):
        store.changes.open("CHG-2", ["h"], "os:ops", duration=timedelta(0))
    w = store.changes.open("CHG-2", ["h", "h"], "os:ops", source="ansible")
    assert w.hosts == ("h",) and w.source == "ansible" and w.is_open()
    assert [x.id for x in store.changes.list(open_only=True)] == [w.id]
    store.changes.close("os:ops", window_id=w.id)
    with pytest.raises(AlertStoreError, match="already closed"):
        store.changes.close("os:ops", window_id=w.id)
    with pytest.raises(AlertStoreError, match="does not exist"):
        store.changes.close("os:ops", window_id=99999)
    with pytest.raises(AlertStoreError, match="no open change window"):
        store.changes.close("os:ops", ticket="CHG-2")
    assert store.changes.list(open_only=True) == []
    assert store.changes.get(w.id) is not None and store.changes.get(99999) is None


# ---- the `changes:` section of the alerts config ----------------------------------------------

def _load(tmp_path: Path, text: str) -> AlertsConfig:
    from dcops.alerts import load_config

    path = tmp_path / "alerts-test.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_changes_config_reads_default_rules_and_durations(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "changes:\n  default: group\n  grace: 5m\n  max_duration: 8h\n"
                          "  rules:\n    'SSH Login By*': resolve\n    dcops_critical_*: "
                          "ignore_window\n")
    c = cfg.changes
    assert c.default == "group" and c.grace == timedelta(minutes=5)
    assert c.max_duration == timedelta(hours=8) and c.default_duration == timedelta(hours=2)
    assert c.policy("x", NEW_ACCOUNT_LOGIN) == "resolve"
    assert c.policy("dcops_critical_rootkit") == "ignore_window"
    assert c.policy("other", "Other") == "group"
    assert AlertsConfig().changes.policy("anything") == "resolve"


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("changes: [group]\n", "changes", "expected a mapping"),
    ("changes: {default: drop}\n", "changes.default", "expected one of resolve, group"),
    ("changes: {rules: [a]}\n", "changes.rules", "expected a mapping of rule"),
    ("changes: {rules: {r1: hide}}\n", "changes.rules.r1", "got 'hide'"),
    ("changes: {grace: soon}\n", "changes.grace", "expected a duration"),
    ("changes: {max_duration: 0}\n", "changes.max_duration", "positive"),
    ("changes: {default_duration: 13h}\n", "changes.default_duration", "longer than"),
    ("changes: {windows: 1}\n", "changes.windows", "unknown key"),
])
def test_changes_config_errors_name_file_and_key(tmp_path: Path, text: str, key: str,
                                                 fragment: str) -> None:
    from dcops.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    assert exc.value.key == key and fragment in str(exc.value)
    assert "alerts-test.yaml" in str(exc.value)


# ---- migration 0005 on a store with data -----------------------------------------------------

def test_migration_0005_upgrades_a_0004_store_and_downgrades(db_url: str, tmp_path: Path) -> None:
    """A store at 0004 with an incident keeps it; the incident's title then follows severity
    (its title severity is unknown before 0005: taken from its alerts); downgrade works."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect, text

    from dcops.alerts.db import MIGRATIONS

    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

    to("0004_scale_indexes")
    ts = "2026-11-22T03:00:00.000000Z"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (title, status, group_host, group_source_ip, created_at) "
            "VALUES ('lab-app1: SSH Brute Force', 'open', 'lab-app1', '', :ts)"), {"ts": ts})
        conn.execute(text(
            "INSERT INTO alerts (source, rule_id, rule_title, severity, status, dedup_key, site, "
            "system, host, source_ip, first_seen, last_seen, count, tags, labels, description, "
            "fingerprint, assignee, incident_id, created_at) VALUES ('sigma', 'bf', "
            "'SSH Brute Force', 'medium', 'new', 'k', '', '', 'lab-app1', '', :ts, :ts, 1, '[]', "
            "'{}', '', '', '', 1, :ts)"), {"ts": ts})
    engine.dispose()
    with _store(db_url, tmp_path) as store:  # opening migrates to head
        assert {c["name"] for c in inspect(store.engine).get_columns("alerts")} >= {
            "change_window_id"}
        (old,) = store.query(AlertFilter())
        assert old.change_window_id is None
        store.accept([replace(login_after_failures(parse(ts)), event_ids=("x",))])
        inc = store.incident(1)
        assert inc is not None and inc.title == "lab-app1: SSH Login Success After Failures"
        assert len(inc.alert_ids) == 2
    to("0004_scale_indexes", down=True)
    assert "change_windows" not in inspect(engine).get_table_names()
    assert "change_window_id" not in {c["name"] for c in inspect(engine).get_columns("alerts")}
    engine.dispose()


def test_the_real_rules_carry_the_account_a_window_matches(store: AlertStore) -> None:
    """Seen in the demo: the house rule 'New Local User Account Created' carried no account
    (the engine keeps a rule's `fields` only), so the playbook's own accounts never matched
    their window. The events are those the demo's spool held, through the real rules."""
    from dcops.detect import Engine
    from dcops.model.event import Event, LogSource

    window = _open(store, accounts=("restic", "Debian-snmp", "prometheus", "dcops"))
    engine = Engine.from_dirs([Path(__file__).resolve().parents[3] / "soc_rules"])
    at = _t(window)
    events = [Event(f"e{n}", at + timedelta(seconds=n), "syslog",
                    LogSource(product="linux", service="auth"),
                    {"event.action": "user_created", "process.name": "useradd",
                     "user.target.name": name, "host.name": host})
              for n, (host, name) in enumerate([("lab-backup1", "restic"),
                                                ("lab-backup1", "Debian-snmp"),
                                                ("lab-mon1", "prometheus"),
                                                ("lab-app1", "mallory")])]
    detections = engine.process(events)
    assert {d.fields.get("user.target.name") for d in detections} == {
        "restic", "Debian-snmp", "prometheus", "mallory"}
    store.accept(detections)
    alerts = store.query(AlertFilter(limit=10))
    expected = {a.host for a in alerts if a.change_window_id == window.id}
    assert expected == {"lab-backup1", "lab-mon1"}
    real = [a for a in alerts if a.change_window_id is None]
    assert [(a.host, a.status) for a in real] == [("lab-app1", "new")]


def test_the_console_sla_leaves_expected_changes_out_too(store: AlertStore) -> None:
    # The console's /sla (dcops.alerts.slasql) and the CLI's (sla_report over sla_inputs) agree.
    from dcops.alerts.db import reading
    from dcops.alerts.sla import sla_report
    from dcops.alerts.slasql import sla_rows

    w = _open(store)
    store.accept([user_created("lab-app1", "restic", _t(w)), brute_force(_t(w, 1))])
    at = _t(w, 3600)
    with reading(store.engine) as conn:
        console = sla_rows(conn, store.config, at)
    cli = sla_report(store.sla_inputs(), store.config, at)
    assert console == cli
    assert sum(r.alerts for r in console) == 1  # the brute force only
