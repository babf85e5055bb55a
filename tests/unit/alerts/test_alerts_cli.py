"""`dcops alerts ...` end to end on a SQLite store: actions attributed, filters, verify-audit.

The store is local and owned by the test's user: single-user mode (actor ``os:NAME``) unless a
token says who acts (identity and RBAC in detail: test_cli_identity.py, test_authz_matrix.py).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.alerts import AlertStore, Users, default_url
from dcops.alerts.credentials import Tokens
from dcops.cli import app
from dcops.cli.authn import os_user
from dcops.model.event import Detection

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("DCOPS_DB_URL", raising=False)
    monkeypatch.delenv("DCOPS_USER", raising=False)
    store = AlertStore(default_url(tmp_path))
    t = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    store.accept([
        Detection("r1", "SSH brute force", "high", t, ("e1",), key="web01", host="web01",
                  site="bien_hoa", system="lgsp", tags=("attack.t1110",)),
        Detection("r2", "Port scan", "low", t, ("e2",), key="db01", host="db01",
                  site="long_khanh", system="portal"),
    ])
    store.close()
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (stderr says who acted: `acting as ...`)."""
    r = runner.invoke(app, ["alerts", *args])
    return r.exit_code, r.stdout


def token_of(state: Path, user: str, role: str) -> Path:
    """A console user with an API token in a 0600 file."""
    store = AlertStore(default_url(state))
    try:
        Users(store.engine).add(user, f"{user}-password", role, "setup")
        token = Tokens(store.engine).issue(user, "setup")
    finally:
        store.close()
    path = state / f"{user}.token"
    path.write_text(token)
    path.chmod(0o600)
    return path


def test_list_filters_and_json(state: Path) -> None:
    code, out = run("list", "--json", "--severity", "high")
    assert code == 0
    assert [a["rule_id"] for a in json.loads(out)] == ["r1"]
    code, out = run("list", "--json", "--site", "long_khanh")
    assert [a["rule_id"] for a in json.loads(out)] == ["r2"]
    code, out = run("list", "--json", "--since", "2026-11-22T04:00:00Z")
    assert json.loads(out) == []
    code, out = run("list", "--since", "soon")
    assert code != 0


def test_actions_are_attributed(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ana, binh = token_of(state, "ana", "analyst"), token_of(state, "binh", "analyst")
    r = runner.invoke(app, ["alerts", "--token-file", str(ana), "ack", "1"])
    assert r.exit_code == 0 and "acting as ana (analyst, API token from" in r.stderr
    assert run("--token-file", str(ana), "assign", "1", "binh")[0] == 0
    monkeypatch.setenv("DCOPS_TOKEN_FILE", str(binh))
    assert run("note", "1", "blocked source")[0] == 0
    monkeypatch.delenv("DCOPS_TOKEN_FILE")
    r = runner.invoke(app, ["alerts", "resolve", "1"])
    assert r.exit_code == 0
    assert f"acting as os:{os_user()} (local SQLite store, single-user mode)" in r.stderr
    _code, out = run("show", "1", "--json")
    data = json.loads(out)
    assert data["alert"]["status"] == "resolved"
    assert data["alert"]["assignee"] == "binh"
    assert [(h["actor"], h["action"]) for h in data["history"]] == [
        ("detect", "alert.create"), ("ana", "alert.acknowledged"), ("ana", "alert.assign"),
        ("binh", "alert.note"), (f"os:{os_user()}", "alert.resolved")]
    assert [n["text"] for n in data["notes"]] == ["blocked source"]


def test_as_is_refused_and_dcops_user_ignored(state: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    r = runner.invoke(app, ["alerts", "ack", "1", "--as", "ana"])
    assert r.exit_code != 0 and "--as is refused" in str(r.exception)
    monkeypatch.setenv("DCOPS_USER", "mallory")
    assert run("ack", "1")[0] == 0
    _code, out = run("show", "1", "--json")
    assert json.loads(out)["history"][-1]["actor"] == f"os:{os_user()}"


def test_illegal_transition_exits_nonzero(state: Path) -> None:
    assert run("resolve", "2", "--false-positive")[0] == 0
    code, _ = run("ack", "2")
    assert code != 0


def test_verify_audit_names_the_first_altered_record(state: Path) -> None:
    run("ack", "1")
    run("note", "1", "x")
    code, out = run("verify-audit")
    assert code == 0 and "4 records verified" in out
    with sqlite3.connect(state / "alerts.db") as db:
        db.execute("UPDATE audit_log SET detail = '{\"to\":\"resolved\"}' WHERE seq = 3")
    r = runner.invoke(app, ["alerts", "verify-audit"])
    assert r.exit_code == 1
    assert "first bad record #3" in r.stderr
    code, out = run("verify-audit", "--json")
    assert code == 1 and json.loads(out)["first_bad"] == 3


def test_users_and_incidents(state: Path) -> None:
    r = runner.invoke(app, ["alerts", "users", "add", "ana", "--role", "analyst",
                            "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 0, r.output
    _, out = run("users", "list", "--json")
    assert json.loads(out)[0]["role"] == "analyst"
    _, out = run("incidents", "list", "--json")
    incs = json.loads(out)
    assert len(incs) == 2
    assert run("incidents", "merge", str(incs[0]["id"]), str(incs[1]["id"]))[0] == 0
    _code, out = run("incidents", "list", "--json")
    assert len(json.loads(out)) == 1


def test_system_levels_from_the_inventory(state: Path) -> None:
    from dcops.cli.alerts import open_store

    inventory = Path(__file__).parents[3] / "inventories" / "production"
    store = open_store(None, None, None, inventory)
    try:
        assert store.config.system_levels["lgsp"] >= 1
        store.accept([Detection("r9", "x", "low", datetime(2026, 11, 22, tzinfo=UTC), ("e9",),
                                key="k", system="lgsp")])
        [a] = [x for x in store.query() if x.rule_id == "r9"]
        assert a.system_level == store.config.system_levels["lgsp"]
    finally:
        store.close()


def test_sla_json_exact_figures(state: Path) -> None:
    db = sqlite3.connect(state / "alerts.db")
    with db:
        db.execute("UPDATE alerts SET status='resolved', created_at='2026-11-22T03:00:00.000000Z',"
                   " acked_at='2026-11-22T03:10:00.000000Z',"
                   " resolved_at='2026-11-22T13:00:00.000000Z' WHERE id=1")
        db.execute("UPDATE alerts SET created_at='2026-01-01T00:00:00.000000Z' WHERE id=2")
    db.close()
    code, out = run("sla", "--json")
    assert code == 0, out
    rows = {r["severity"]: r for r in json.loads(out)}
    high = rows["high"]
    assert (high["mean_ack_s"], high["p90_ack_s"], high["ack_breaches"]) == (600, 600, 0)
    # resolved after 10 h against the 8 h target: one resolve breach, nothing open
    assert (high["mean_resolve_s"], high["resolve_breaches"], high["open"], high["overdue"]) == (
        36000, 1, 0, 0)
    low = rows["low"]
    assert (low["open"], low["overdue"], low["ack_breaches"], low["resolve_breaches"]) == (
        1, 1, 1, 1)
    assert low["mean_ack_s"] is None and low["target_resolve_s"] == 72 * 3600
    code, out = run("sla")
    assert code == 0 and "SLA per severity / theo mức độ" in out


def test_action_commands_print_the_updated_alert_as_json(state: Path) -> None:
    code, out = run("ack", "1", "2", "--json")
    assert code == 0, out
    assert [(a["id"], a["status"]) for a in json.loads(out)] == [
        (1, "acknowledged"), (2, "acknowledged")]
    assert json.loads(out)[0]["acked_at"]
    code, out = run("investigate", "1", "--json")
    assert [a["status"] for a in json.loads(out)] == ["investigating"]
    code, out = run("assign", "1", "binh", "--json")
    assert code == 0 and json.loads(out)["assignee"] == "binh"
    code, out = run("note", "1", "source blocked at the firewall", "--json")
    assert code == 0 and json.loads(out)["id"] == 1
    code, out = run("resolve", "1", "--json")
    assert code == 0
    [resolved] = json.loads(out)
    assert resolved["status"] == "resolved" and resolved["resolved_at"]


def test_json_action_reports_failures_after_the_successes(state: Path) -> None:
    assert run("resolve", "1")[0] == 0
    r = runner.invoke(app, ["alerts", "ack", "1", "2", "--json"])
    assert r.exit_code != 0
    assert [a["id"] for a in json.loads(r.stdout)] == [2]
    assert "alert 1 is resolved" in str(r.exception)
    r = runner.invoke(app, ["alerts", "assign", "99", "x", "--json"])
    assert r.exit_code != 0 and r.stdout.strip() == ""
    assert "alert 99 does not exist" in str(r.exception)


def test_users_role_keeps_the_password_and_is_audited(state: Path) -> None:
    r = runner.invoke(app, ["alerts", "users", "add", "binh", "--role", "analyst",
                            "--password-stdin"], input="binh-password\n")
    assert r.exit_code == 0, r.output
    assert run("users", "role", "binh", "--role", "engineer")[0] == 0
    _code, out = run("users", "list", "--json")
    assert [(u["username"], u["role"]) for u in json.loads(out)] == [("binh", "engineer")]
    from dcops.alerts import Users

    store = AlertStore(default_url(state))
    try:
        assert Users(store.engine).authenticate("binh", "binh-password") is not None
        [rec] = [x for x in store.audit_records() if x.action == "user.role"]
        assert (rec.actor, rec.detail) == (f"os:{os_user()}",
                                           {"from": "analyst", "to": "engineer"})
    finally:
        store.close()
    code, _ = run("users", "role", "binh", "--role", "root")
    assert code != 0
    code, _ = run("users", "role", "nobody", "--role", "analyst")
    assert code != 0


def test_show_prints_the_triggering_events_from_the_spool(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: `alerts show` listed event ids only."""
    monkeypatch.setenv("COLUMNS", "200")  # one table row per event
    from dcops.model.event import Event, LogSource
    from dcops.pipeline import SqliteSpool

    spool = SqliteSpool(state / "spool.db")
    spool.publish([Event("e1", datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "syslog",
                         LogSource("linux", "sshd"),
                         {"host.name": "web01", "event.action": "ssh_login_failed",
                          "message": "Failed password for root [bold]x[/]"})])
    spool.close()
    code, out = run("show", "1")
    assert code == 0, out
    assert "2026-11-22 03:00:00" in out and "ssh_login_failed" in out
    assert "Failed password for root [bold]x[/]" in out  # shown as text, not as markup
    code, out = run("show", "2")
    assert "not in the event spool / không có trong bộ đệm sự kiện: e2" in out
    data = json.loads(run("show", "1", "--json")[1])
    assert [(e["id"], e["host"]) for e in data["events"]] == [("e1", "web01")]
