"""Who a `dcops alerts` command acts as on a local store: tokens (issued, listed, revoked,
expired), user administration only for admins, --db-owner checked, the single-user default.
The shared-store rules (PostgreSQL) are in tests/integration/alerts/test_cli_identity_postgres.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from dcops.alerts import AlertStore, Users, default_url, schema
from dcops.cli import app
from dcops.cli.authn import os_user

runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    for var in ("DCOPS_DB_URL", "DCOPS_TOKEN_FILE", "DCOPS_ALERTS_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    store = AlertStore(default_url(tmp_path))
    Users(store.engine).add("adm", "adm-password", "admin", "setup")
    Users(store.engine).add("ana", "ana-password", "analyst", "setup")
    store.close()
    return tmp_path


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr plus the error message."""
    r = runner.invoke(app, ["alerts", *args], input=stdin)
    return r.exit_code, r.stdout, r.stderr + (str(r.exception) if r.exception else "")


def login(state: Path, user: str) -> Path:
    out = state / f"{user}.token"
    code, stdout, err = invoke("login", user, "--password-stdin", "--out", str(out),
                               stdin=f"{user}-password\n")
    assert code == 0, err
    assert f"logged in as {user}" in stdout and str(out) in stdout
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_text().startswith("dcops_")
    return out


def test_single_user_mode_says_who_acts(state: Path) -> None:
    code, _out, err = invoke("users", "list")
    assert code == 0
    assert f"acting as os:{os_user()} (local SQLite store, single-user mode)" in err


def test_admin_token_administers_users_analyst_token_does_not(state: Path) -> None:
    adm, ana = login(state, "adm"), login(state, "ana")
    code, _, err = invoke("--token-file", str(ana), "users", "add", "eve", "--role", "admin",
                          "--password-stdin", stdin="eve-password\n")
    assert code != 0
    assert "ana (analyst) may not do `dcops alerts users add`: it needs the users permission" \
        in err
    for args in (("users", "list"), ("users", "role", "ana", "--role", "admin"),
                 ("users", "disable", "adm"), ("users", "token", "ana", "--out", "x"),
                 ("users", "map-os-user", "root", "ana"), ("users", "unlock", "ana"),
                 ("audit",), ("verify-audit",)):
        code, _, err = invoke("--token-file", str(ana), *args)
        assert code != 0 and "may not do" in err, args
    code, _, err = invoke("--token-file", str(adm), "users", "add", "eve", "--role", "auditor",
                          "--password-stdin", stdin="eve-password\n")
    assert code == 0, err
    assert "acting as adm (admin, API token from" in err
    code, _, err = invoke("--token-file", str(adm), "ack", "1")
    assert code != 0 and "adm (admin) may not do `dcops alerts ack`" in err
    store = AlertStore(default_url(state))
    try:
        [rec] = [r for r in store.audit_records() if r.target == "user:eve"]
        assert (rec.actor, rec.action) == ("adm", "user.add")
    finally:
        store.close()


def test_tokens_listed_without_secrets_and_revoked(state: Path) -> None:
    ana = login(state, "ana")
    secret = ana.read_text().strip()
    code, out, _ = invoke("users", "tokens", "--json")
    [tok] = json.loads(out)
    assert tok["username"] == "ana" and tok["label"] == "cli" and secret not in out
    assert invoke("--token-file", str(ana), "list")[0] == 0
    assert invoke("users", "token-revoke", tok["id"])[0] == 0
    code, _, err = invoke("--token-file", str(ana), "list")
    assert code != 0 and "revoked or expired" in err


def test_expired_wrong_and_disabled_tokens_refused(state: Path) -> None:
    ana = login(state, "ana")
    store = AlertStore(default_url(state))
    try:
        with store.engine.begin() as conn:
            conn.execute(update(schema.api_tokens).values(expires_at="2020-01-01T00:00:00.000000Z"))
    finally:
        store.close()
    assert invoke("--token-file", str(ana), "list")[0] != 0
    ana = login(state, "ana")
    good = ana.read_text().strip()
    ana.write_text(good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"))
    assert invoke("--token-file", str(ana), "list")[0] != 0
    ana.write_text(good)
    assert invoke("--token-file", str(ana), "list")[0] == 0
    assert invoke("users", "disable", "ana")[0] == 0
    code, _, err = invoke("--token-file", str(ana), "list")
    assert code != 0 and "its user is disabled" in err


def test_token_file_must_be_private(state: Path) -> None:
    ana = login(state, "ana")
    ana.chmod(0o640)
    code, _, err = invoke("--token-file", str(ana), "list")
    assert code != 0 and "may be read by others (mode 640)" in err and str(ana) in err
    code, _, err = invoke("--token-file", str(state / "missing"), "list")
    assert code != 0 and "cannot read the API token file" in err


def test_admin_issues_a_service_token(state: Path) -> None:
    out = state / "svc.token"
    code, stdout, _ = invoke("users", "token", "ana", "--out", str(out), "--label", "soar",
                             "--ttl", "never")
    assert code == 0 and f"token for ana written to {out}" in stdout
    code, _, err = invoke("--token-file", str(out), "ack", "1")
    assert "acting as ana (analyst" in err  # the alert does not exist, the identity does
    code, out_json, _ = invoke("users", "tokens", "ana", "--json")
    assert json.loads(out_json)[0]["expires_at"] is None
    assert invoke("users", "token", "nobody", "--out", str(out))[0] != 0


def test_db_owner_is_checked_and_only_for_user_administration(state: Path) -> None:
    code, _, err = invoke("--db-owner", "users", "list")
    assert code == 0 and "store owner, --db-owner checked against the database" in err
    code, _, err = invoke("--db-owner", "list")
    assert code != 0 and "--db-owner is for user administration only" in err


def test_os_user_mapping_needs_an_admin_and_is_audited(state: Path) -> None:
    assert invoke("users", "map-os-user", "alice", "ana", "--host", "soc1")[0] == 0
    assert invoke("users", "map-os-user", "bob", "ghost")[0] != 0
    code, _, err = invoke("users", "unmap-os-user", "alice", "--host", "nowhere")
    assert code != 0 and "is not mapped" in err
    assert invoke("users", "unmap-os-user", "alice", "--host", "soc1")[0] == 0
    store = AlertStore(default_url(state))
    try:
        actions = [(r.action, r.detail.get("os_user")) for r in store.audit_records()
                   if "os_user" in r.action]
    finally:
        store.close()
    assert actions == [("user.map_os_user", "alice@soc1"), ("user.unmap_os_user", "alice@soc1")]
