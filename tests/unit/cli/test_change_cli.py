"""`dcops change open|close|list` on a SQLite store, and the playbooks' callback plugin that runs
them around a playbook (driven here with fake play objects; the demo runs it for real)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.alerts import AlertFilter, AlertStore, default_url
from dcops.alerts.timeutil import parse
from dcops.cli import app
from dcops.cli.authn import os_user
from dcops.model.event import Detection

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "playbooks" / "callback_plugins" / "dcops_change.py"
runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DCOPS_DB_URL", "DCOPS_TOKEN_FILE", "DCOPS_ALERTS_CONFIG", "DCOPS_CHANGE_TICKET",
                 "DCOPS_CHANGE_ACCOUNTS", "DCOPS_CHANGE_DISABLE", "DCOPS_CHANGE_DURATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def change(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["change", *args])
    return r.exit_code, r.stdout


def test_open_list_close_attributed_and_in_the_trail(state: Path) -> None:
    code, out = change("open", "--ticket", "CHG-7", "--host", "lab-app1", "--host", "lab-db1",
                       "--account", "restic", "--summary", "restic upgrade", "--duration", "90m",
                       "--json")
    assert code == 0, out
    w = json.loads(out)
    assert w["hosts"] == ["lab-app1", "lab-db1"] and w["accounts"] == ["restic"]
    assert w["opened_by"] == f"os:{os_user()}" and w["source"] == "cli" and w["open"]
    assert (parse(w["closes_at"]) - parse(w["opened_at"])).total_seconds() == 5400
    code, out = change("list", "--open")
    assert code == 0 and "CHG-7" in out and "đang mở" in out
    with AlertStore(default_url(state)) as store:  # an alert of the change, then a real one
        at = parse(w["opened_at"])
        store.accept([Detection("uc", "New Local User Account Created", "medium", at, ("e1",),
                                key="a", host="lab-app1",
                                fields={"user.target.name": "restic"}),
                      Detection("uc", "New Local User Account Created", "medium", at, ("e2",),
                                key="b", host="lab-app1",
                                fields={"user.target.name": "mallory"})])
    code, out = change("close", "--ticket", "CHG-7")
    assert code == 0 and "1 expected alert(s), 0 still open" in out
    code, out = change("list", "--json")
    (listed,) = json.loads(out)
    assert listed["closed_by"] == f"os:{os_user()}" and not listed["open"]
    assert (listed["alerts"], listed["alerts_open"]) == (1, 0)
    code, out = change("list", "--open", "--json")
    assert code == 0 and json.loads(out) == []
    with AlertStore(default_url(state)) as store:
        actions = [r.action for r in store.audit_records(f"change:{w['id']}")]
        assert actions == ["change.open", "change.close"]
        open_alerts = store.query(AlertFilter(status=["new"]))
    assert [a.host for a in open_alerts] == ["lab-app1"] and open_alerts[0].change_window_id is None


def test_alerts_show_and_list_mark_the_expected_change(state: Path) -> None:
    _, out = change("open", "--ticket", "CHG-8", "--host", "web01", "--json")
    w = json.loads(out)
    with AlertStore(default_url(state)) as store:
        store.accept([Detection("r", "Some rule", "low", parse(w["opened_at"]), ("e1",),
                                key="k", host="web01")])
        (a,) = store.query(AlertFilter())
    r = runner.invoke(app, ["alerts", "show", str(a.id)])
    assert r.exit_code == 0 and "expected change / thay đổi dự kiến" in r.stdout
    assert "CHG-8" in r.stdout
    r = runner.invoke(app, ["alerts", "list", "--json"])
    assert json.loads(r.stdout)[0]["change_window_id"] == w["id"]


# ---- the callback plugin -------------------------------------------------------------------

def _plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dcops_change_callback", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeHost:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeInventory:
    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups

    def get_hosts(self, pattern: str) -> list[FakeHost]:
        return [FakeHost(h) for h in self.groups[pattern]]

    def get_host(self, name: str) -> FakeHost:
        return FakeHost(name)


class FakeManager:
    def __init__(self, inventory: FakeInventory, variables: dict[str, Any]) -> None:
        self._inventory = inventory
        self.variables = variables

    def get_vars(self, **_: Any) -> dict[str, Any]:
        return dict(self.variables)


class FakePlay:
    def __init__(self, hosts: str, manager: FakeManager) -> None:
        self.hosts = hosts
        self.manager = manager

    def get_variable_manager(self) -> FakeManager:
        return self.manager

    def get_loader(self) -> None:
        return None


class FakePlaybook:
    _file_name = "/x/playbooks/site.yml"

    def __init__(self, plays: list[FakePlay]) -> None:
        self.plays = plays

    def get_plays(self) -> list[FakePlay]:
        return self.plays


class Said:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.lines: list[str] = []

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def display(self, msg: str) -> None:
        self.lines.append(msg)

    def vv(self, msg: str) -> None:
        self.lines.append(msg)


def _run_playbook(monkeypatch: pytest.MonkeyPatch, alerts: list[Detection] | None = None,
                  state: Path | None = None) -> tuple[Any, Said]:
    monkeypatch.setenv("DCOPS_CHANGE_DCOPS", f"{sys.executable} -m dcops")
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    inventory = FakeInventory({"servers": ["lab-app1", "lab-backup1"], "monitoring": ["lab-mon1"]})
    manager = FakeManager(inventory, {"dcops_change_accounts": ["dcops-admin", "restic"]})
    plays = [FakePlay("servers", manager), FakePlay("monitoring", manager)]
    cb = _plugin().CallbackModule()
    said = Said()
    cb._display = said
    cb.v2_playbook_on_start(FakePlaybook(plays))
    for play in plays:
        cb.v2_playbook_on_play_start(play)
    if alerts and state is not None:
        with AlertStore(default_url(state)) as store:
            store.accept(alerts)
    cb.v2_playbook_on_stats(None)
    return cb, said


def test_plugin_opens_a_window_for_every_play_host_and_closes_it(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_CHANGE_TICKET", "CHG-SITE-1")
    monkeypatch.setenv("DCOPS_CHANGE_ACCOUNTS", "dcops")
    _, said = _run_playbook(monkeypatch)
    assert said.warnings == []
    assert any("closed" in line for line in said.lines)
    with AlertStore(default_url(state)) as store:
        (w,) = store.changes.list()
    assert w.ticket == "CHG-SITE-1" and w.source == "ansible" and w.closed_at is not None
    assert w.hosts == ("lab-app1", "lab-backup1", "lab-mon1")
    assert w.accounts == ("dcops", "dcops-admin", "restic")
    assert w.summary == "ansible-playbook site.yml"


def test_plugin_never_fails_the_playbook_when_the_store_is_unreachable(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_DB_URL", "bogus://x")
    cb, said = _run_playbook(monkeypatch)
    assert len(said.warnings) == 1 and "NOT recorded" in said.warnings[0]
    assert "bogus://x" in said.warnings[0] and cb.windows == []


def test_plugin_records_nothing_without_a_named_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCOPS_STATE_DIR", raising=False)
    monkeypatch.delenv("DCOPS_DB_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    _, said = _run_playbook(monkeypatch)
    assert len(said.warnings) == 1 and "no alert store named" in said.warnings[0]
    assert not (tmp_path / ".local").exists()


def test_plugin_can_be_disabled(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_CHANGE_DISABLE", "1")
    _, said = _run_playbook(monkeypatch)
    assert said.warnings == [] and said.lines == []
    with AlertStore(default_url(state)) as store:
        assert store.changes.list() == []


# ---- the demo --------------------------------------------------------------------------------

def test_demo_playbook_runs_carry_a_ticket_and_the_summary_counts_expected_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcops.cli import demo

    d = demo.Demo(root=REPO, state=tmp_path, env={"PATH": "/usr/bin"})
    seen: list[tuple[tuple[str, ...], str | None]] = []
    monkeypatch.setattr(d, "run", lambda *argv, **_: seen.append(
        (argv, d.env.get("DCOPS_CHANGE_TICKET"))))
    demo._playbook(d, "playbooks/site.yml")
    assert seen[0][1] == "DEMO-site" and "DCOPS_CHANGE_TICKET" not in d.env
    alerts = [{"change_window_id": 1}] * 6 + [{"change_window_id": None}] * 5
    assert demo.expected_summary(alerts).startswith(
        "11 alerts in the queue, 6 of them expected changes")
