"""Server defaults of the console: sessions ended on the server, the webhook's bearer token,
request body limits, the trusted proxy, and `dcops serve` refusing unsafe binds."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dcops.alerts import AlertStore, Users, schema
from dcops.alerts.backend import StoreBackend
from dcops.alerts.throttle import LoginThrottle
from dcops.cli import app as cli_app
from dcops.errors import ConfigError
from dcops.triage import create_app

TOKEN = "webhook-token-0123456789abcdef"
FIRING = {"version": "4", "status": "firing", "alerts": [
    {"status": "firing", "labels": {"alertname": "LinkDown", "instance": "wan-r1",
                                     "severity": "critical"},
     "annotations": {}, "startsAt": "2026-11-22T03:00:00Z", "fingerprint": "f-down"}]}
RESOLVED = {"version": "4", "status": "resolved", "alerts": [
    {**FIRING["alerts"][0], "status": "resolved",  # type: ignore[dict-item]
     "endsAt": "2026-11-22T03:30:00Z"}]}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hardening")
    s = AlertStore(f"sqlite:///{d / 'alerts.db'}")
    Users(s.engine).add("ana", "ana-password", "analyst", "setup")
    s.close()
    return d


@pytest.fixture
def store(tmp_path: Path, template: Path) -> Iterator[AlertStore]:
    for f in template.iterdir():
        if f.is_file() and not f.name.endswith(("-wal", "-shm")):
            shutil.copy2(f, tmp_path / f.name)
    s = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield s
    s.close()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def logged_in(store: AlertStore, clock: Clock | None = None, **kw: object) -> TestClient:
    backend = StoreBackend(store, clock) if clock else StoreBackend(store)
    c = TestClient(create_app(backend, "k", **kw), follow_redirects=False,  # type: ignore[arg-type]
                   client=("127.0.0.1", 50000))
    r = c.post("/login", data={"username": "ana", "password": "ana-password",
                               "csrf_token": csrf(c.get("/login").text)})
    assert r.status_code == 303
    return c


def test_logout_ends_the_session_on_the_server(store: AlertStore) -> None:
    c = logged_in(store)
    stolen = c.cookies.get("dcops_session")
    assert stolen and c.get("/alerts").status_code == 200
    token = csrf(c.get("/alerts").text)
    assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = TestClient(create_app(StoreBackend(store), "k"), follow_redirects=False)
    replay.cookies.set("dcops_session", stolen)  # the signed cookie is still valid for 12 h
    r = replay.get("/alerts")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert [x.action for x in store.audit_records()][-2:] == ["user.login", "user.logout"]


def test_session_expires_on_the_server(store: AlertStore) -> None:
    clock = Clock()
    c = logged_in(store, clock)
    clock.t += timedelta(hours=11, minutes=59)
    assert c.get("/alerts").status_code == 200
    clock.t += timedelta(minutes=2)
    assert c.get("/alerts").status_code == 303


def test_password_reset_and_disable_end_sessions_on_the_server(store: AlertStore) -> None:
    c, other = logged_in(store), logged_in(store)
    Users(store.engine).add("ana", "ana-password", "analyst", "adm")  # same password, even
    assert c.get("/alerts").status_code == 303 and other.get("/alerts").status_code == 303
    c = logged_in(store)
    Users(store.engine).set_disabled("ana", True, "adm")
    Users(store.engine).set_disabled("ana", False, "adm")
    assert c.get("/alerts").status_code == 303  # re-enabling does not revive the session


def test_cookie_is_secure_when_asked(store: AlertStore) -> None:
    c = TestClient(create_app(StoreBackend(store), "k", secure_cookies=True),
                   base_url="https://console.example")
    cookie = c.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def webhook(store: AlertStore, token: str = "", addr: str = "127.0.0.1",
            proxies: tuple[str, ...] = ()) -> TestClient:
    return TestClient(create_app(StoreBackend(store), "k", webhook_token=token,
                                 trusted_proxies=proxies),
                      client=(addr, 50000))


def test_webhook_needs_the_bearer_token(store: AlertStore) -> None:
    url = "/api/v1/alertmanager/webhook"
    assert webhook(store, TOKEN).post(url, json=FIRING).json()["error"] == \
        "missing or wrong bearer token"
    c = webhook(store, TOKEN)
    assert c.post(url, json=FIRING, headers={"Authorization": f"Bearer {TOKEN}"}).json()[
        "created"] == 1
    # the reproduction: an unauthenticated `resolved` closed an open alert
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        r = c.post(url, json=RESOLVED, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    [a] = store.query()
    assert a.status == "new"
    r = c.post(url, json=RESOLVED, headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["resolved"] == 1


def test_webhook_without_a_token_answers_loopback_only(store: AlertStore) -> None:
    url = "/api/v1/alertmanager/webhook"
    assert webhook(store, addr="10.0.0.5").post(url, json=FIRING).status_code == 401
    assert webhook(store, addr="::1").post(url, json=FIRING).status_code == 200
    # behind a proxy every request comes from loopback: no token, no webhook at all
    c = webhook(store, addr="127.0.0.1", proxies=("127.0.0.1",))
    assert c.post(url, json=FIRING).status_code == 401


def test_bodies_are_size_limited(store: AlertStore) -> None:
    url = "/api/v1/alertmanager/webhook"
    c = webhook(store, TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = b'{"version": "4", "alerts": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = c.post(url, content=big, headers=auth)
    assert r.status_code == 413 and "larger than 1048576 bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it is read
        for _ in range(17):
            yield b" " * 65536

    r = c.post(url, content=chunks(), headers=auth)
    assert r.status_code == 413
    just = {"version": "4", "status": "firing", "alerts": [], "pad": "x" * 900_000}
    assert c.post(url, json=just, headers=auth).status_code == 200
    login = webhook(store)
    token = csrf(login.get("/login").text)
    r = login.post("/login", data={"username": "ana", "password": "p" * 70_000,
                                   "csrf_token": token})
    assert r.status_code == 413 and "nội dung yêu cầu quá lớn" in r.text
    assert store.audit_records()[-1].action != "user.login"
    r = login.post("/login", content=(b"a=" + b"b" * 65536 for _ in range(2)),
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_forwarded_address_trusted_from_the_proxy_only(store: AlertStore) -> None:
    """The throttle and the audit trail see the client the proxy names, and only that proxy's
    word counts: a direct client's X-Forwarded-For is ignored."""
    def fail_login(addr: str, forwarded: str) -> None:
        c = TestClient(create_app(StoreBackend(store), "k", trusted_proxies=("10.0.0.2",)),
                       client=(addr, 50000), follow_redirects=False)
        token = csrf(c.get("/login").text)
        r = c.post("/login", data={"username": f"x{addr}", "password": "wrong1234",
                                   "csrf_token": token},
                   headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"})
        assert r.status_code == 401

    fail_login("10.0.0.2", "198.51.100.7")
    fail_login("10.0.0.9", "198.51.100.8")
    with store.engine.connect() as conn:
        keys = {r.key for r in conn.execute(select(schema.login_throttle.c.key))}
    assert {"addr:198.51.100.7", "addr:10.0.0.9"} <= keys
    assert "addr:198.51.100.8" not in keys and "addr:10.0.0.2" not in keys
    assert LoginThrottle(store.engine).locks() == []


def serve(*args: str, tmp_path: Path) -> str:
    """Run `dcops serve` up to the point where it would listen; its refusal."""
    r = CliRunner().invoke(cli_app, ["serve", "--db", f"sqlite:///{tmp_path / 'a.db'}", *args])
    assert r.exit_code != 0, r.output
    assert isinstance(r.exception, ConfigError), r.exception
    return str(r.exception)


def test_serve_refuses_unsafe_binds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("DCOPS_WEBHOOK_TOKEN_FILE", raising=False)
    msg = serve("--host", "0.0.0.0", tmp_path=tmp_path)
    assert "refusing to serve on 0.0.0.0 without TLS" in msg and "--behind-proxy" in msg
    msg = serve("--host", "10.77.0.1", "--behind-proxy", tmp_path=tmp_path)
    assert "needs a bearer token" in msg and "--webhook-token-file" in msg
    msg = serve("--host", "127.0.0.1", "--behind-proxy", tmp_path=tmp_path)
    assert "needs a bearer token" in msg  # the proxy makes every client look local
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o640)
    msg = serve("--behind-proxy", "--webhook-token-file", str(short), tmp_path=tmp_path)
    assert "shorter than 16 characters" in msg and str(short) in msg
    world = tmp_path / "world"
    world.write_text(TOKEN)
    world.chmod(0o644)
    msg = serve("--webhook-token-file", str(world), tmp_path=tmp_path)
    assert "may be read by others (mode 644)" in msg and str(world) in msg
    msg = serve("--proxy-address", "10.0.0.2", tmp_path=tmp_path)
    assert "--proxy-address only means something with --behind-proxy" in msg
