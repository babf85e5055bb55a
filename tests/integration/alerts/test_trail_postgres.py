"""The audit trail on a real PostgreSQL 15: the application role cannot change trail rows (grants),
nobody can without switching the trigger off (owner) or bypassing it (superuser), and what such a
person does is still found by verify-audit. Anchors reach a real rsyslogd and verify from its file.

Also reruns every SQLite tamper test of tests/unit/alerts/test_trail_tamper.py on PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from dcops.alerts import AlertStore
from dcops.alerts.trail import TrailConfig

pytestmark = pytest.mark.integration
DCOPS = str(Path(sys.executable).parent / "dcops")
UNIT = Path(__file__).parents[2] / "unit" / "alerts"
sys.path.insert(0, str(UNIT))  # trail_helpers, shared with the SQLite tests
from trail_helpers import det, lab_pki, pre_upgrade_store, tamper, trail_config  # noqa: E402

from dcops.alerts.chain import VerifyResult  # noqa: E402


def _load(name: str, path: Path) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tamper = _load("dcops_trail_tamper_suite_pg", UNIT / "test_trail_tamper.py")
globals().update({k: v for k, v in vars(_tamper).items()
                  if k.startswith("test_") or k == "store"})
_rsyslog = _load("dcops_trail_rsyslog", Path(__file__).parents[1] / "soc_ingest" /
                 "soc_rsyslog.py")


@pytest.fixture
def url(db_url: str) -> str:
    """The tamper suite's store, on PostgreSQL."""
    return db_url


def _sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def roles(postgres_server: str) -> tuple[str, str, str]:
    """A database owned by a migration/owner role and a separate application role (URLs)."""
    tag = uuid.uuid4().hex[:8]
    owner, app, db = f"dcops_owner_{tag}", f"dcops_app_{tag}", f"trail_{tag}"
    admin = postgres_server + "/postgres"
    _sql(admin, f"CREATE ROLE {owner} LOGIN")
    _sql(admin, f"CREATE ROLE {app} LOGIN")
    _sql(admin, f"CREATE DATABASE {db} OWNER {owner}")
    base = postgres_server.replace("dcops@", "{}@") + f"/{db}"
    return base.format(owner), base.format(app), app


def verify(url: str, base: Path, **kw: object) -> VerifyResult:
    """verify-audit's check, in process (the CLI's authentication is tested with the CLI)."""
    s = AlertStore(url, trail=trail_config(base, **kw))
    try:
        return s.verify_audit()
    finally:
        s.close()


def dcops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DCOPS, *args], check=False, capture_output=True, text=True, env=env,
                          timeout=120)


def refused(url: str, statement: str) -> str:
    """Run `statement` as the URL's role; return PostgreSQL's error (fails if it succeeded)."""
    try:
        _sql(url, statement)
    except psycopg.Error as exc:
        return str(exc)
    pytest.fail(f"{statement!r} was allowed")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    key, cert = lab_pki(tmp_path)
    return {**os.environ, "DCOPS_STATE_DIR": str(tmp_path), "DCOPS_TRAIL_SYSLOG": "off",
           "DCOPS_TRAIL_KEY_FILE": str(tmp_path / "keys" / "trail.key"),
           "DCOPS_TRAIL_ANCHOR_KEY": str(key), "DCOPS_TRAIL_ANCHOR_CERT": str(cert),
           "DCOPS_TRAIL_ANCHOR_FILE": str(tmp_path / "anchors.jsonl")}


def test_app_role_appends_but_cannot_change_the_trail(roles: tuple[str, str, str],
                                                      tmp_path: Path,
                                                      cli_env: dict[str, str]) -> None:
    owner_url, app_url, app_role = roles
    AlertStore(owner_url, trail=trail_config(tmp_path)).close()  # the owner migrates
    granted = dcops("alerts", "trail", "grant-app", app_role, "--db", owner_url, env=cli_env)
    assert granted.returncode == 0, granted.stderr
    assert f'GRANT SELECT, INSERT ON "audit_log" TO "{app_role}"' in granted.stdout \
        or f"GRANT SELECT, INSERT ON audit_log TO {app_role}" in granted.stdout
    app = AlertStore(app_url, trail=trail_config(tmp_path))  # the application role
    try:
        app.accept([det(1), det(2)])
        app.acknowledge(1, "ana")
        app.trail.anchor_now(app.engine)
        assert app.verify_audit().ok
    finally:
        app.close()
    for statement in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
                      "DELETE FROM audit_log WHERE seq = 3", "TRUNCATE audit_log"):
        assert "permission denied for table audit_log" in refused(app_url, statement)
    for statement in ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
                      "DROP TRIGGER audit_log_append_only ON audit_log"):
        message = refused(app_url, statement)  # "table" or "relation" depending on the command
        assert "must be owner of" in message and "audit_log" in message
    # The owner has every privilege, and the trigger still refuses.
    for statement, op in (("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", "UPDATE"),
                          ("DELETE FROM audit_log WHERE seq = 3", "DELETE"),
                          ("TRUNCATE audit_log", "TRUNCATE")):
        assert f"audit_log is append-only: {op} refused" in refused(owner_url, statement)
    ok = verify(app_url, tmp_path)
    assert ok.ok and ok.checked == 3 and ok.anchors_checked == 1, ok
    # Only by switching the trigger off can the owner rewrite a record: verify-audit finds it.
    _sql(owner_url, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    _sql(owner_url, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    _sql(owner_url, "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    bad = verify(app_url, tmp_path)
    assert not bad.ok and bad.first_bad == 2
    assert bad.reason.startswith("content was altered: the HMAC")


def test_legacy_trail_upgraded_on_postgres(db_url: str, tmp_path: Path) -> None:
    pre_upgrade_store(db_url, 3)
    s = AlertStore(db_url, trail=trail_config(tmp_path))
    try:
        r = s.verify_audit()
        assert not r.ok and r.legacy_through == 3 and "no keyed record vouches" in r.reason
        s.accept([det(1)])
        r = s.verify_audit()
        assert r.ok and r.legacy_through == 3 and r.checked == 5, r
        assert "records 1..3 use the old unkeyed SHA-256 scheme" in r.warnings[0]
        assert "append-only: UPDATE refused" in refused(
            db_url, "UPDATE audit_log SET actor = 'x' WHERE seq = 1")
    finally:
        s.close()


@pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog not installed")
def test_anchors_through_a_real_rsyslogd_prove_a_truncation(db_url: str, tmp_path: Path,
                                                            cli_env: dict[str, str]) -> None:
    port = _rsyslog.free_port()  # type: ignore[attr-defined]
    out = tmp_path / "remote" / "dcops-anchors.log"
    out.parent.mkdir()
    conf = f"""
global(workDirectory="{tmp_path}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}")
if $programname == "dcops-trail-anchor" or $msg contains "probe-" then {{
  action(type="omfile" file="{out}")
}}
"""
    env = {**cli_env, "DCOPS_DB_URL": db_url, "DCOPS_TRAIL_SYSLOG": f"udp://127.0.0.1:{port}"}
    s = AlertStore(db_url, trail=trail_config(tmp_path))
    s.accept([det(1), det(2), det(3)])
    with _rsyslog.rsyslogd(conf, tmp_path):  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while not (out.exists() and "probe-" in out.read_text()):
            assert time.monotonic() < deadline, "rsyslogd never wrote the probe"
            subprocess.run(["logger", "--udp", "--server", "127.0.0.1", "--port", str(port),
                            "-t", "probe", "probe-1"], check=True, timeout=20)
            time.sleep(0.2)
        anchored = dcops("alerts", "anchor", env=env)
        assert anchored.returncode == 0 and "anchored record #3" in anchored.stdout, anchored
        while "dcops.trail.anchor" not in out.read_text():
            assert time.monotonic() < deadline + 30, "the anchor never reached rsyslogd"
            time.sleep(0.1)
    (tmp_path / "anchors.jsonl").unlink()  # the local copy is lost with the server
    tamper(s.engine, "DELETE FROM audit_log WHERE seq = 3", "UPDATE audit_head SET seq = 2, "
           "hash = (SELECT hash FROM audit_log WHERE seq = 2) WHERE id = 1")
    s.close()
    bad = verify(db_url, tmp_path, anchor_sources=(out,))
    assert not bad.ok and bad.first_bad == 3
    assert bad.reason.startswith(f"the trail ends at record 2 but {out}:")


def test_verify_needs_the_key_on_postgres(db_url: str) -> None:
    """A shared store has no default key: writing says which key is missing."""
    s = AlertStore(db_url)
    try:
        with pytest.raises(Exception, match="no audit trail key"):
            s.accept([det(1)])
    finally:
        s.close()
    s = AlertStore(db_url, trail=TrailConfig(key_text="k1:" + "ab" * 32))
    try:
        s.accept([det(1)])
        assert s.verify_audit().ok
    finally:
        s.close()
