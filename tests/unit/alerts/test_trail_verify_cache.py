"""The console's incremental trail verification (dcops.alerts.verifycache).

Between full walks only new records are walked; an alteration before the cached point is still
found by a full walk (on demand, periodic in the background, and `store.verify_audit`, which the
CLI's `dcops alerts trail verify` uses).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from dcops.alerts import AlertStore, Users, ingest_webhook
from dcops.alerts.backend import StoreBackend
from dcops.alerts.trail import TrailConfig
from dcops.alerts.verifycache import TrailVerifier
from dcops.triage import create_app

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[AlertStore]:
    s = AlertStore(db_url, trail=TrailConfig(key_file=tmp_path / "trail.key"))
    yield s
    s.close()


def post(store: AlertStore, start: int, n: int) -> None:
    ingest_webhook(store, {"version": "4", "alerts": [
        {"status": "firing", "fingerprint": f"{i:016x}", "startsAt": T0.isoformat(),
         "labels": {"alertname": "WanLinkDown", "instance": f"rtr{i}"}}
        for i in range(start, start + n)]})


def tamper(store: AlertStore, sql: str) -> None:
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(sql))


def test_incremental_walk_agrees_with_full(store: AlertStore) -> None:
    v = TrailVerifier(store.engine)
    post(store, 0, 10)
    first = v.verify()
    assert first.full and first.result.ok and first.full_through == 10
    post(store, 10, 5)
    again = v.verify()
    assert not again.full and again.incremental_from == 10
    full = store.verify_audit()
    assert again.result == full and full.ok and full.checked == 15
    assert v.verify().incremental_from == 15  # nothing new: nothing walked


def test_alteration_before_cached_point_found_by_full_walk(store: AlertStore) -> None:
    v = TrailVerifier(store.engine)
    post(store, 0, 10)
    assert v.verify().result.ok
    tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    post(store, 10, 2)
    # Not re-read by the incremental walk (the page says so and when the full walk last ran)...
    assert v.verify().incremental_from == 10
    # ... but the full walk finds it, on demand and in the CLI's path, and later views keep it.
    on_demand = v.verify(full=True)
    assert on_demand.full and not on_demand.result.ok and on_demand.result.first_bad == 4
    assert store.verify_audit().first_bad == 4
    post(store, 12, 1)
    later = v.verify()
    assert later.incremental_from == 12 and later.result.first_bad == 4


def test_rewritten_cached_point_forces_full_walk(store: AlertStore) -> None:
    v = TrailVerifier(store.engine)
    post(store, 0, 5)
    v.verify()
    tamper(store, "UPDATE audit_log SET hash = prev_hash WHERE seq = 5")
    got = v.verify()
    assert got.full and not got.result.ok


def test_stale_full_walk_runs_in_background(store: AlertStore) -> None:
    v = TrailVerifier(store.engine, full_every=timedelta(0))
    post(store, 0, 5)
    v.verify()
    tamper(store, "UPDATE audit_log SET detail = '{}' WHERE seq = 2")
    seen = v.verify()
    assert seen.incremental_from == 5 and seen.full_running
    thread = v._running
    if thread is not None:
        thread.join(timeout=30)
    assert v.verify().result.first_bad == 2


def test_audit_page_says_when_it_last_verified_fully(store: AlertStore) -> None:
    Users(store.engine).add("aud", "aud-password", "auditor", "setup")
    post(store, 0, 3)
    c = TestClient(create_app(StoreBackend(store), "test-secret"), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    assert c.post("/login", data={"username": "aud", "password": "aud-password",
                                  "csrf_token": token.group(1)}).status_code == 303
    first = c.get("/audit").text
    assert "Full verification now" in first and 'id="verify-full-at"' in first
    assert 'href="/audit?verify=full"' in first
    post(store, 3, 2)
    tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    second = c.get("/audit").text
    assert "Chain intact" in second
    m = re.search(r"Records after #(\d+) verified now", second)
    assert m and int(m.group(1)) >= 3
    assert f"#1\u2013#{m.group(1)}" in second  # the last full walk and how far it went
    full = c.get("/audit?verify=full").text
    assert "Chain ALTERED" in full and "#1 " in full


def _gated(v: TrailVerifier) -> threading.Event:
    """Hold v's walks until the returned event is set (a long trail, deterministically)."""
    gate = threading.Event()
    real = v._walk

    def slow(start: Any) -> Any:
        assert gate.wait(30)
        return real(start)

    v._walk = slow  # type: ignore[method-assign]
    return gate


def test_first_view_answers_while_the_first_full_walk_runs(store: AlertStore) -> None:
    post(store, 0, 5)
    v = TrailVerifier(store.engine, first_wait=0.05)
    gate = _gated(v)
    got = v.verify()
    assert got.pending and got.full_running and got.full_at is None
    assert v.verify().pending  # the same walk, not a second one
    gate.set()
    thread = v._running
    assert thread is not None
    thread.join(timeout=30)
    done = v.verify()  # walks on from where the full walk stopped
    assert not done.pending and done.result is not None and done.full_at is not None
    assert done.result.ok and done.result.checked == 5 and done.full_through == 5
    post(store, 5, 1)
    assert v.verify().incremental_from == 5


def test_warm_walks_before_the_first_view(store: AlertStore) -> None:
    post(store, 0, 3)
    v = TrailVerifier(store.engine, first_wait=0)
    v.warm()
    thread = v._running
    assert thread is not None
    thread.join(timeout=30)
    got = v.verify()
    assert not got.pending and got.result is not None and got.result.ok
    assert got.full_at is not None and got.full_through == 3 and got.incremental_from == 3


def test_a_failing_first_walk_is_shown_not_hidden(store: AlertStore) -> None:
    post(store, 0, 2)
    v = TrailVerifier(store.engine, first_wait=5)
    calls = []

    def broken(start: Any) -> Any:
        calls.append(start)
        raise RuntimeError("database gone")

    v._walk = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="database gone"):
        v.verify()  # the background walk failed: walked again in front, and that says why
    assert len(calls) == 2


def test_audit_page_says_verification_is_running(store: AlertStore) -> None:
    Users(store.engine).add("aud", "aud-password", "auditor", "setup")
    post(store, 0, 3)
    backend = StoreBackend(store)
    backend.verifier.first_wait = 0.05
    gate = _gated(backend.verifier)
    c = TestClient(create_app(backend, "test-secret"), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    assert c.post("/login", data={"username": "aud", "password": "aud-password",
                                  "csrf_token": token.group(1)}).status_code == 303
    page = c.get("/audit")
    assert page.status_code == 200 and 'id="verify-pending"' in page.text
    assert "Chain intact" not in page.text and "Chain ALTERED" not in page.text
    assert 'id="audit"' in page.text  # the records are listed meanwhile
    gate.set()
    thread = backend.verifier._running
    if thread is not None:
        thread.join(timeout=30)
    assert "Chain intact" in c.get("/audit").text


def test_many_new_records_are_walked_in_the_background(store: AlertStore) -> None:
    # A day nobody opened /audit, or an outage: the view must not walk them all in front.
    v = TrailVerifier(store.engine, front_limit=5)
    post(store, 0, 4)
    assert v.verify().result is not None
    post(store, 4, 10)  # 10 audit records newer than the point, more than front_limit
    gate = _gated(v)
    got = v.verify()
    assert got.behind == 10 and got.result is not None and got.result.checked == 4
    assert not got.full_running  # a catch-up from the point, not a full walk
    gate.set()
    thread = v._running
    assert thread is not None
    thread.join(timeout=30)
    later = v.verify()
    assert later.behind == 0 and later.result is not None and later.result.checked == 14
    assert later.result.ok and later.incremental_from == 14
    # an alteration among the records walked in the background is found there too
    post(store, 14, 6)
    tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 16")
    assert v.verify().behind == 6
    thread = v._running
    if thread is not None:
        thread.join(timeout=30)
    found = v.verify().result
    assert found is not None and not found.ok and found.first_bad == 16


def test_audit_page_says_newer_records_are_being_verified(store: AlertStore) -> None:
    Users(store.engine).add("aud", "aud-password", "auditor", "setup")
    backend = StoreBackend(store)
    backend.verifier.front_limit = 3
    c = TestClient(create_app(backend, "test-secret"), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    assert c.post("/login", data={"username": "aud", "password": "aud-password",
                                  "csrf_token": token.group(1)}).status_code == 303
    assert "Chain intact" in c.get("/audit").text
    post(store, 0, 5)
    gate = _gated(backend.verifier)
    page = c.get("/audit").text
    assert 'id="verify-behind"' in page and "Chain intact" in page
    assert re.search(r"\b\d+ newer records are being verified", page)
    gate.set()
    thread = backend.verifier._running
    if thread is not None:
        thread.join(timeout=30)
