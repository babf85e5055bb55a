"""The authorisation matrix: ONE table (role x action -> allowed) from which a test is generated
for every role and every action, on the console (HTTP) and on the CLI.

The table is written here as data, independently of dcops.model.rbac: the generated tests check
that both paths behave as the table says (allowed: the action is done; refused: HTTP 403, or the
CLI exits non-zero naming the missing permission, and nothing changed). Two more tests check that
every console route and every `dcops alerts` command appears in the table.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer.main
from itsdangerous import TimestampSigner
from sqlalchemy import insert
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dcops.alerts import AlertmanagerSilencer, AlertStore, Users, ingest_webhook, schema
from dcops.alerts.backend import StoreBackend
from dcops.alerts.credentials import OsUsers, Tokens
from dcops.alerts.sessions import Sessions
from dcops.cli import app as cli_app
from dcops.cli.authn import os_user
from dcops.model.event import Detection
from dcops.triage import create_app

# ---- THE TABLE ------------------------------------------------------------------------------
# owner: the CLI on a local SQLite store used by the file's owner (single-user mode);
# anonymous: the console without a session. "-": the path has no such role.
MATRIX = """
action              analyst engineer auditor admin  owner  anonymous
view-queue          yes     yes      yes     yes    yes    no
view-alert          yes     yes      yes     yes    yes    no
view-incidents      yes     yes      yes     yes    yes    no
view-incident       yes     yes      yes     yes    -      no
view-sla            yes     yes      yes     yes    yes    no
view-noc            yes     yes      yes     yes    -      no
view-noc-map        yes     yes      yes     yes    -      no
view-noc-device     yes     yes      yes     yes    -      no
acknowledge         yes     no       no      no     yes    no
investigate         yes     no       no      no     yes    no
resolve             yes     no       no      no     yes    no
false-positive      yes     no       no      no     yes    no
assign              yes     no       no      no     yes    no
note                yes     no       no      no     yes    no
bulk-acknowledge    yes     no       no      no     yes    no
bulk-assign         yes     no       no      no     -      no
merge-incidents     yes     no       no      no     yes    no
split-incident      yes     no       no      no     yes    no
silence             yes     yes      no      no     yes    no
view-audit-trail    no      no       yes     yes    yes    no
verify-audit-trail  no      no       yes     yes    yes    no
list-users          no      no       no      yes    yes    no
add-user            no      no       no      yes    yes    no
change-role         no      no       no      yes    yes    no
disable-user        no      no       no      yes    yes    no
unlock-login        no      no       no      yes    yes    no
list-login-locks    no      no       no      yes    yes    no
issue-token         no      no       no      yes    yes    no
list-tokens         no      no       no      yes    yes    no
revoke-token        no      no       no      yes    yes    no
map-os-user         no      no       no      yes    yes    no
unmap-os-user       no      no       no      yes    yes    no
"""


def parse_matrix(text: str) -> dict[str, dict[str, bool | None]]:
    """action -> role -> allowed (None where the role does not exist on a path)."""
    header, *rows = [line.split() for line in text.strip().splitlines()]
    roles = header[1:]
    return {r[0]: {role: {"yes": True, "no": False, "-": None}[v]
                   for role, v in zip(roles, r[1:], strict=True)} for r in rows}


TABLE = parse_matrix(MATRIX)
CONSOLE_ROLES = ("analyst", "engineer", "auditor", "admin", "anonymous")
CLI_ROLES = ("analyst", "engineer", "auditor", "admin", "owner")
USERS = {"analyst": "ana", "engineer": "eng", "auditor": "aud", "admin": "adm"}
SECRET = "matrix-secret"
CSRF = "matrix-csrf-token"


@dataclass(frozen=True)
class How:
    """How an action is done on each path (None: not on that path)."""

    console: tuple[str, str, dict[str, Any]] | None
    cli: tuple[str, ...] | None


# Alerts 1 and 2 come from Sigma rules (incidents 1 and 2); alert 3 from Alertmanager.
HOW: dict[str, How] = {
    "view-queue": How(("GET", "/alerts", {}), ("list",)),
    "view-alert": How(("GET", "/alerts/1", {}), ("show", "1")),
    "view-incidents": How(("GET", "/incidents", {}), ("incidents", "list")),
    "view-incident": How(("GET", "/incidents/1", {}), None),
    "view-sla": How(("GET", "/sla", {}), ("sla",)),
    # the NOC pages without a Prometheus: each says how to configure one (tests of the view:
    # test_noc_view.py)
    "view-noc": How(("GET", "/noc", {}), None),
    "view-noc-map": How(("GET", "/noc/map", {}), None),
    "view-noc-device": How(("GET", "/noc/device/lab-sw1", {}), None),
    "acknowledge": How(("POST", "/alerts/1/transition", {"to": "acknowledged"}), ("ack", "1")),
    "investigate": How(("POST", "/alerts/1/transition", {"to": "investigating"}),
                       ("investigate", "1")),
    "resolve": How(("POST", "/alerts/1/transition", {"to": "resolved"}), ("resolve", "1")),
    "false-positive": How(("POST", "/alerts/1/transition", {"to": "false_positive"}),
                          ("resolve", "1", "--false-positive")),
    "assign": How(("POST", "/alerts/1/assign", {"assignee": "ana"}), ("assign", "1", "ana")),
    "note": How(("POST", "/alerts/1/note", {"text": "checked"}), ("note", "1", "checked")),
    "bulk-acknowledge": How(("POST", "/alerts/bulk", {"ids": ["1", "2"], "action": "ack"}),
                            ("ack", "1", "2")),
    "bulk-assign": How(("POST", "/alerts/bulk", {"ids": ["1", "2"], "action": "assign",
                                                 "assignee": "ana"}), None),
    "merge-incidents": How(("POST", "/incidents/merge", {"target": "1", "sources": "2"}),
                           ("incidents", "merge", "1", "2")),
    "split-incident": How(("POST", "/incidents/split", {"ids": ["2"]}),
                          ("incidents", "split", "2")),
    "silence": How(("POST", "/alerts/3/silence", {"comment": "maintenance"}),
                   ("silence", "3", "--comment", "maintenance", "--alertmanager-url", "{am}")),
    "view-audit-trail": How(("GET", "/audit", {}), ("audit",)),
    "verify-audit-trail": How(None, ("verify-audit",)),  # the console's /audit verifies too
    "list-users": How(("GET", "/users", {}), ("users", "list")),
    "add-user": How(("POST", "/users", {"username": "newbie", "password": "newbie-password",
                                        "role": "analyst"}),
                    ("users", "add", "newbie", "--role", "analyst", "--password-stdin")),
    "change-role": How(("POST", "/users/victim/role", {"role": "engineer"}),
                       ("users", "role", "victim", "--role", "engineer")),
    "disable-user": How(("POST", "/users/victim/disable", {}), ("users", "disable", "victim")),
    "unlock-login": How(("POST", "/users/unlock", {"key": "user:victim"}),
                        ("users", "unlock", "victim")),
    "list-login-locks": How(None, ("users", "locks")),  # the console's /users lists them
    "issue-token": How(None, ("users", "token", "victim", "--out", "{dir}/victim.token")),
    "list-tokens": How(None, ("users", "tokens")),
    "revoke-token": How(None, ("users", "token-revoke", "{victim_token}")),
    "map-os-user": How(None, ("users", "map-os-user", "someone", "victim", "--host", "soc2")),
    "unmap-os-user": How(None, ("users", "unmap-os-user", "mapped", "--host", "soc1")),
}


class _FakeAlertmanager(BaseHTTPRequestHandler):
    """Alertmanager's two silence endpoints, as dcops calls them (real HTTP, no daemon)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"silenceID": "sil-1"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAlertmanager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users, a console session and an API token per role, alerts, a lock, a token, a mapping."""
    d = tmp_path_factory.mktemp("matrix")
    s = AlertStore(f"sqlite:///{d / 'alerts.db'}")
    users = Users(s.engine)
    for role, name in [*USERS.items(), ("analyst", "victim")]:
        users.add(name, f"{name}-password", role, "setup")
    t0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    s.accept([Detection("r1", "SSH brute force", "high", t0, ("e1",), key="web01", host="web01"),
              Detection("r2", "Port scan", "low", t0, ("e2",), key="db01", host="db01")])
    ingest_webhook(s, {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "LinkDown", "instance": "r1",
                                         "severity": "warning"},
         "annotations": {}, "startsAt": "2026-11-22T03:00:00Z", "fingerprint": "f1"}]})
    ids: dict[str, str] = {}
    with s.engine.begin() as conn:
        for role, name in USERS.items():
            ids[f"sid:{role}"] = Sessions(s.engine).create(conn, name)
        conn.execute(insert(schema.login_throttle).values(
            key="user:victim", failures=0, last_failure_at="2026-11-22T03:00:00.000000Z",
            locked_until="2999-01-01T00:00:00.000000Z", locks=1, last_client="10.0.0.66"))
    for role, name in USERS.items():
        ids[f"token:{role}"] = Tokens(s.engine).issue(name, "setup")
    ids["victim_token"] = Tokens(s.engine).issue("victim", "setup").split("_")[1].split(".")[0]
    OsUsers(s.engine).map("mapped@soc1", "victim", "setup")
    s.close()
    (d / "ids.json").write_text(json.dumps(ids))
    return d


@pytest.fixture
def store(tmp_path: Path, template: Path, alertmanager: str) -> Iterator[AlertStore]:
    for f in template.iterdir():
        if f.is_file() and not f.name.endswith(("-wal", "-shm")):
            shutil.copy2(f, tmp_path / f.name)
    s = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}",
                   silencer=AlertmanagerSilencer(alertmanager))
    yield s
    s.close()


def state_of(store: AlertStore) -> list[Any]:
    """Everything an action could change (the audit trail included)."""
    tables = (schema.alerts, schema.incidents, schema.notes, schema.silences, schema.users,
              schema.login_throttle, schema.api_tokens, schema.os_user_map, schema.audit)
    with store.engine.connect() as conn:
        return [sorted(tuple(r) for r in conn.execute(t.select())) for t in tables]


def cases(path: str) -> list[Any]:
    roles = CONSOLE_ROLES if path == "console" else CLI_ROLES
    out = []
    for action, how in HOW.items():
        if getattr(how, path) is None:
            continue
        for role in roles:
            expected = TABLE[action][role]
            assert expected is not None, f"the table has no entry for {role} x {action}"
            out.append(pytest.param(action, role, expected, id=f"{role}-{action}"))
    return out


def console_for(store: AlertStore, role: str, ids: dict[str, str]) -> TestClient:
    c = TestClient(create_app(StoreBackend(store), SECRET), follow_redirects=False,
                   client=("127.0.0.1", 50000))
    if role != "anonymous":  # the cookie a login of this user produces (its session made above)
        data = {"user": {"username": USERS[role], "role": role, "sid": ids[f"sid:{role}"]},
                "csrf": CSRF}
        c.cookies.set("dcops_session", TimestampSigner(SECRET).sign(
            base64.b64encode(json.dumps(data).encode())).decode())
    return c


@pytest.mark.parametrize(("action", "role", "allowed"), cases("console"))
def test_console(store: AlertStore, template: Path, action: str, role: str,
                 allowed: bool) -> None:
    ids = json.loads((template / "ids.json").read_text())
    method, path, form = HOW[action].console  # type: ignore[misc]
    c = console_for(store, role, ids)
    before = state_of(store)
    r = c.get(path) if method == "GET" else c.post(path, data={**form, "csrf_token": CSRF})
    if allowed:
        assert r.status_code == (200 if method == "GET" else 303), r.text[-600:]
        if method == "POST":
            assert not r.headers["location"].startswith("/login")
            assert state_of(store) != before, "allowed, yet nothing changed"
    elif role == "anonymous":
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert state_of(store) == before
    else:
        assert r.status_code == 403, r.text[-600:]
        assert state_of(store) == before


@pytest.mark.parametrize(("action", "role", "allowed"), cases("cli"))
def test_cli(store: AlertStore, template: Path, tmp_path: Path, alertmanager: str,
             monkeypatch: pytest.MonkeyPatch, action: str, role: str, allowed: bool) -> None:
    ids = json.loads((template / "ids.json").read_text())
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    for var in ("DCOPS_DB_URL", "DCOPS_ALERTS_CONFIG", "DCOPS_TOKEN_FILE", "DCOPS_USER"):
        monkeypatch.delenv(var, raising=False)
    if role != "owner":
        token = tmp_path / f"{role}.token"
        token.write_text(ids[f"token:{role}"])
        token.chmod(0o600)
        monkeypatch.setenv("DCOPS_TOKEN_FILE", str(token))
    argv = [a.format(am=alertmanager, dir=tmp_path, victim_token=ids["victim_token"])
            for a in HOW[action].cli]  # type: ignore[union-attr]
    before = state_of(store)
    r = CliRunner().invoke(cli_app, ["alerts", *argv], input="newbie-password\n")
    said = r.stderr + str(r.exception or "")
    if allowed:
        assert r.exit_code == 0, said
        who = f"os:{os_user()}" if role == "owner" else USERS[role]
        assert f"acting as {who} (" in r.stderr
        if action in ("acknowledge", "add-user", "silence", "revoke-token", "map-os-user"):
            assert state_of(store) != before
    else:
        assert r.exit_code != 0
        assert f"({role}) may not do `dcops alerts" in said and "permission" in said, said
        assert state_of(store) == before


def test_every_console_route_is_in_the_table(store: AlertStore) -> None:
    app = create_app(StoreBackend(store), SECRET)
    public = {"/", "/healthz", "/login", "/logout", "/api/v1/alertmanager/webhook"}
    routes = {(m, r.path) for r in app.routes if isinstance(r, Route) and r.path not in public
              for m in (r.methods or ()) if m in ("GET", "POST")}
    covered = set()
    for how in HOW.values():
        if how.console is not None:
            method, path, _ = how.console
            matched = [(m, p) for m, p in routes if m == method and _matches(p, path)]
            assert matched, f"{method} {path} is no console route"
            covered.update(matched)
    assert routes == covered, f"routes missing from the matrix: {sorted(routes - covered)}"


def _matches(template: str, path: str) -> bool:
    parts, concrete = template.split("/"), path.split("/")
    return len(parts) == len(concrete) and all(
        p == c or p.startswith("{") for p, c in zip(parts, concrete, strict=True))


def test_every_alerts_command_is_in_the_table() -> None:
    group = typer.main.get_command(cli_app).commands["alerts"]  # type: ignore[attr-defined]

    def names(cmd: Any, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        if hasattr(cmd, "commands"):
            return {n for name, sub in cmd.commands.items() for n in names(sub, (*prefix, name))}
        return {prefix}

    commands = names(group, ())
    covered = set()
    for how in HOW.values():
        if how.cli is not None:
            covered |= {c for c in commands if tuple(how.cli[:len(c)]) == c}
    # `login` needs no identity (it proves one with a password). The trail's key and anchor
    # commands (`dcops alerts anchor`, `dcops alerts trail ...`: dcops.cli.alerts_trail) are run
    # by whoever holds the trail key and the database owner's rights; they are tested with the
    # trail (tests/unit/alerts/test_trail_*.py).
    exempt = {("login",), ("anchor",)} | {c for c in commands if c[0] == "trail"}
    assert commands - covered - exempt == set()
