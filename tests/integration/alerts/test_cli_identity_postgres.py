"""The installed `dcops alerts` on a shared store (a real PostgreSQL): no identity, no access;
the first admin only on an empty store; tokens and admin-mapped OS accounts through the same
role table as the console; --db-owner checked against the database itself."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dcops.alerts import AlertStore
from dcops.alerts.trail import TrailConfig
from dcops.cli.authn import os_user
from dcops.model.event import Detection

pytestmark = pytest.mark.integration
DCOPS = str(Path(sys.executable).parent / "dcops")


def dcops(*args: str, env: dict[str, str], stdin: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DCOPS, "alerts", *args], check=False, capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def test_shared_store_rbac_from_the_cli(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DCOPS_TOKEN_FILE", "DCOPS_USER", "DCOPS_ALERTS_CONFIG")}
    env.update(DCOPS_STATE_DIR=str(tmp_path), DCOPS_DB_URL=db_url)
    trail = TrailConfig(key_file=tmp_path / "trail.key")  # the CLI's default key file
    store = AlertStore(db_url, trail=trail)
    store.accept([Detection("r1", "SSH brute force", "high", dt.datetime.now(dt.UTC), ("e1",),
                            key="web01", host="web01")])
    store.close()
    me = f"{os_user()}@{socket.gethostname()}"

    r = dcops("list", env=env)  # no token, no mapping: refused, and told what to do
    assert r.returncode == 1
    assert "a shared store needs a console identity" in r.stderr
    assert f"users map-os-user {os_user()} USER" in r.stderr
    assert dcops("ack", "1", "--as", "adm", env=env).returncode == 1  # a bare name is nothing

    r = dcops("users", "add", "ana", "--role", "analyst", "--password-stdin", env=env,
              stdin="ana-password\n")
    assert r.returncode == 1 and "the first one must be an admin" in r.stderr
    r = dcops("users", "add", "adm", "--role", "admin", "--password-stdin", env=env,
              stdin="adm-password\n")
    assert r.returncode == 0, r.stderr
    assert f"first admin of an empty store, bootstrap by os:{me}" in r.stdout
    r = dcops("users", "add", "eve", "--role", "admin", "--password-stdin", env=env,
              stdin="eve-password\n")
    assert r.returncode == 1 and "a shared store needs a console identity" in r.stderr

    # the admin logs in (default token file on a shared store: <state>/cli-token)
    r = dcops("login", "adm", "--password-stdin", env=env, stdin="adm-password\n")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli-token").stat().st_mode & 0o777 == 0o600
    r = dcops("users", "add", "ana", "--role", "analyst", "--password-stdin", env=env,
              stdin="ana-password\n")
    assert r.returncode == 0 and "acting as adm (admin, API token from" in r.stderr
    assert dcops("users", "map-os-user", os_user(), "ana", env=env).returncode == 0
    assert dcops("ack", "1", env=env).returncode == 1  # an admin does not triage
    (tmp_path / "cli-token").unlink()

    # this OS account now acts as ana (analyst): triage yes, user administration no
    r = dcops("ack", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert f"acting as ana (analyst, OS account {me} mapped by an admin)" in r.stderr
    r = dcops("users", "list", env=env)
    assert r.returncode == 1 and "ana (analyst) may not do `dcops alerts users list`" in r.stderr

    # --db-owner: this login is the database's superuser; another login is refused
    r = dcops("--db-owner", "users", "role", "ana", "--role", "engineer", env=env)
    assert r.returncode == 0 and "acting as dbowner:dcops (store owner" in r.stderr
    assert dcops("--db-owner", "ack", "1", env=env).returncode == 1
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute("CREATE ROLE dcops_app LOGIN")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                     "TO dcops_app")
    app_env = {**env, "DCOPS_DB_URL": db_url.replace("//dcops@", "//dcops_app@")}
    r = dcops("--db-owner", "users", "list", env=app_env)
    assert r.returncode == 1 and "does not own the store's tables" in r.stderr

    store = AlertStore(db_url, trail=trail)
    try:
        trail_rows = [(x.actor, x.action, x.target) for x in store.audit_records()]
        assert store.verify_audit().ok
    finally:
        store.close()
    assert (f"bootstrap:os:{me}", "user.add", "user:adm") in trail_rows
    assert ("adm", "user.map_os_user", "user:ana") in trail_rows
    assert ("ana", "alert.acknowledged", "alert:1") in trail_rows
    assert ("dbowner:dcops", "user.role", "user:ana") in trail_rows
