"""Login throttling: back-off, lock per account and per address, one audit record per lock,
unlock by time or by an admin (CLI and console). Time is a clock the test moves, never a sleep."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dcops.alerts import AlertStore, Users, load_config
from dcops.alerts.backend import StoreBackend
from dcops.alerts.throttle import LoginThrottle, ThrottlePolicy
from dcops.cli import app as cli_app
from dcops.errors import ConfigError
from dcops.triage import create_app


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.t = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ana (analyst) and adm (admin); argon2 runs once."""
    d = tmp_path_factory.mktemp("throttle")
    s = AlertStore(f"sqlite:///{d / 'alerts.db'}")
    Users(s.engine).add("ana", "ana-password", "analyst", "setup")
    Users(s.engine).add("adm", "adm-password", "admin", "setup")
    s.close()
    return d


def copy_store(template: Path, to: Path) -> None:
    """The template database and what lives beside it (the trail's key file, mode kept)."""
    for f in template.iterdir():
        if f.is_file() and not f.name.endswith(("-wal", "-shm")):
            shutil.copy2(f, to / f.name)


@pytest.fixture
def store(tmp_path: Path, template: Path) -> Iterator[AlertStore]:
    copy_store(template, tmp_path)
    s = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield s
    s.close()


def users(store: AlertStore, clock: Clock, **policy: object) -> Users:
    return Users(store.engine, LoginThrottle(store.engine, ThrottlePolicy(**policy),  # type: ignore[arg-type]
                                             clock))


def locks_in_trail(store: AlertStore) -> list[tuple[str, str, str]]:
    return [(r.actor, r.action, r.target) for r in store.audit_records()
            if r.action.endswith("locked")]


def test_backoff_doubles_then_the_account_locks_once(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock)
    before = len(store.audit_records())
    waits = []
    for _ in range(4):
        assert u.login("ana", "wrong", "10.0.0.7").user is None
        refused = u.login("ana", "wrong", "10.0.0.7")  # at once: backing off, unchecked
        assert refused.user is None and not refused.locked
        waits.append(round(refused.retry_after))
        clock.advance(refused.retry_after)
    assert waits == [1, 2, 4, 8]
    assert len(store.audit_records()) == before  # failures are counted, not written
    assert u.login("ana", "wrong", "10.0.0.7").user is None  # the 5th failure: locked
    assert locks_in_trail(store) == [("dcops", "user.locked", "user:ana")]
    [rec] = [r for r in store.audit_records() if r.action == "user.locked"]
    assert rec.detail["failures"] == 5 and rec.detail["client"] == "10.0.0.7"
    assert rec.detail["until"] == "2026-12-01T08:15:15.000000Z"
    # 30 more guesses, the right password among them: refused, and not one more record
    for n in range(30):
        clock.advance(1)
        r = u.login("ana", "ana-password" if n == 29 else "guess", "10.0.0.7")
        assert r.user is None and r.locked
    assert len(store.audit_records()) == before + 1
    assert store.verify_audit().ok


def test_lock_ends_by_time_and_the_next_lock_is_longer(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock, backoff=timedelta(0), max_failures=3)
    for _ in range(3):
        u.login("ana", "wrong", "10.0.0.7")
    locked = u.login("ana", "ana-password", "10.0.0.7")
    assert locked.locked and round(locked.retry_after) == 15 * 60
    clock.advance(15 * 60)
    for _ in range(3):  # the lock is over: three more guesses, a second lock of 30 minutes
        assert not u.login("ana", "wrong", "10.0.0.7").locked
    assert round(u.login("ana", "ana-password", "10.0.0.7").retry_after) == 30 * 60
    clock.advance(30 * 60)
    ok = u.login("ana", "ana-password", "10.0.0.7")
    assert ok.user is not None and ok.user.username == "ana"
    [login] = [r for r in store.audit_records() if r.action == "user.login"]
    assert login.detail == {"role": "analyst", "client": "10.0.0.7"}  # the lock reset it
    assert [t for _a, _b, t in locks_in_trail(store)] == ["user:ana", "user:ana"]


def test_an_address_guessing_many_accounts_is_locked(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock, max_failures_per_address=8)
    for i in range(8):  # a different name each time: no account reaches its own limit
        r = u.login(f"user{i}", "guess", "203.0.113.9")
        assert r.user is None and r.retry_after == 0
        clock.advance(60)
    r = u.login("ana", "ana-password", "203.0.113.9")
    assert r.locked and r.user is None  # the address is locked, even with a right password
    assert locks_in_trail(store) == [("dcops", "address.locked", "address:203.0.113.9")]
    assert u.login("ana", "ana-password", "10.0.0.7").user is not None  # ana elsewhere: fine


def test_address_backs_off_after_an_accounts_worth_of_failures(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock)
    for i in range(5):  # an office NAT: five mistakes cost no waiting at the address
        assert u.login(f"clerk{i}", "typo", "10.9.9.9").retry_after == 0
    assert u.login("clerk9", "typo", "10.9.9.9").retry_after == 0  # 6th: counted, then ...
    refused = u.login("clerk10", "typo", "10.9.9.9")
    assert round(refused.retry_after) == 1 and not refused.locked


def test_parallel_guesses_meet_the_backoff(store: AlertStore) -> None:
    """Counted before the (slow) password check: ten at once, one is checked."""
    clock = Clock()
    u = users(store, clock)
    results = []
    barrier = threading.Barrier(10)

    def guess() -> None:
        barrier.wait()
        results.append(u.login("ana", "wrong", "10.0.0.7"))

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.retry_after == 0 for r in results) == 1


def test_success_forgives_the_account(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock)
    for _ in range(3):
        u.login("ana", "wrong", "10.0.0.7")
        clock.advance(10)
    assert u.login("ana", "ana-password", "10.0.0.7").user is not None
    [rec] = [r for r in store.audit_records() if r.action == "user.login"]
    assert rec.detail["failures_before"] == 3
    assert u.login("ana", "wrong", "10.0.0.7").retry_after == 0  # counting starts again


def console(store: AlertStore, clock: Clock, addr: str = "10.0.0.7") -> TestClient:
    return TestClient(create_app(StoreBackend(store, clock), "k"), follow_redirects=False,
                      client=(addr, 40000))


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_console_30_wrong_passwords_then_the_right_one(store: AlertStore) -> None:
    """The issue's reproduction: before, all 30 got 401 (30 audit rows) and the right one
    logged in. Now: 401 while guesses are checked, 429 with Retry-After while backing off or
    locked, the right password refused during the lock, one record for the lock."""
    clock = Clock()
    c = console(store, clock)
    token = csrf(c.get("/login").text)
    before = len(store.audit_records())
    codes = []
    for _ in range(30):
        r = c.post("/login", data={"username": "ana", "password": "guess", "csrf_token": token})
        codes.append(r.status_code)
        clock.advance(1)
    assert codes.count(401) == 5 and codes.count(429) == 25
    r = c.post("/login", data={"username": "ana", "password": "ana-password",
                               "csrf_token": token})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 15 * 60
    assert "try again in" in r.text and "thử lại sau" in r.text
    assert len(store.audit_records()) == before + 1
    clock.advance(15 * 60)
    r = c.post("/login", data={"username": "ana", "password": "ana-password",
                               "csrf_token": token})
    assert r.status_code == 303


def test_admin_unlocks_in_the_console(store: AlertStore) -> None:
    clock = Clock()
    u = users(store, clock, backoff=timedelta(0))
    for _ in range(5):
        u.login("ana", "wrong", "10.0.0.7")
    adm = console(store, clock, "10.0.0.1")
    token = csrf(adm.get("/login").text)
    assert adm.post("/login", data={"username": "adm", "password": "adm-password",
                                    "csrf_token": token}).status_code == 303
    page = adm.get("/users").text
    assert 'data-lock="user:ana"' in page and "Login locks" in page
    token = csrf(page)
    ana = console(store, clock)
    r = ana.post("/users/unlock", data={"key": "user:ana", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")  # not logged in
    assert adm.post("/users/unlock", data={"key": "user:ana", "csrf_token": token}
                    ).status_code == 303
    assert 'data-lock="user:ana"' not in adm.get("/users").text
    [rec] = [r for r in store.audit_records() if r.action == "user.unlock"]
    assert (rec.actor, rec.target) == ("adm", "user:ana")
    r = ana.post("/login", data={"username": "ana", "password": "ana-password",
                                 "csrf_token": csrf(ana.get("/login").text)})
    assert r.status_code == 303
    assert adm.post("/users/unlock", data={"key": "user:ana", "csrf_token": token}
                    ).status_code == 409  # nothing left to unlock


def test_cli_login_is_throttled_and_an_admin_unlocks(tmp_path: Path, template: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    copy_store(template, tmp_path)
    (tmp_path / "alerts.yaml").write_text("console:\n  login: {max_failures: 3, backoff: 0s}\n")
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("DCOPS_DB_URL", raising=False)
    monkeypatch.delenv("DCOPS_TOKEN_FILE", raising=False)
    runner = CliRunner()

    def login(password: str) -> tuple[int, str]:
        r = runner.invoke(cli_app, ["alerts", "login", "ana", "--password-stdin", "--out",
                                    str(tmp_path / "tok")], input=password + "\n")
        return r.exit_code, str(r.exception or r.stdout)

    assert [login("wrong")[1] for _ in range(3)] == [
        "invalid user or password / sai tên hoặc mật khẩu"] * 3
    code, out = login("ana-password")
    assert code == 1 and "too many failed logins" in out
    r = runner.invoke(cli_app, ["alerts", "users", "locks", "--json"])
    assert '"key": "user:ana"' in r.stdout
    r = runner.invoke(cli_app, ["alerts", "users", "unlock", "ana"])
    assert r.exit_code == 0 and "user:ana: unlocked" in r.stdout
    code, out = login("ana-password")
    assert code == 0 and "logged in as ana (analyst)" in out
    assert (tmp_path / "tok").stat().st_mode & 0o777 == 0o600
    r = runner.invoke(cli_app, ["alerts", "users", "unlock", "ana"])
    assert r.exit_code != 0 and "no failed logins or lock" in str(r.exception)


def test_policy_from_the_config_names_bad_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text("console:\n  login:\n    max_failures: 3\n    lock: 1h\n")
    policy = load_config(cfg).login
    assert (policy.max_failures, policy.lock, policy.max_failures_per_address) == (
        3, timedelta(hours=1), 20)
    for bad, key in (("max_failures: 0", "console.login.max_failures"),
                     ("lock: soon", "console.login.lock"),
                     ("lockout: 1h", "console.login.lockout")):
        cfg.write_text(f"console:\n  login:\n    {bad}\n")
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(cfg)
