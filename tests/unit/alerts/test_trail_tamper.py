"""The audit trail against someone with write access to the database (SQLite here; the same
attacks on PostgreSQL, past its trigger, are in tests/integration/alerts/test_trail_postgres.py).

Each attack is detected by verify-audit and located (first bad record and what is wrong); the
legitimate paths (appends, key rotation, anchors, an upgraded legacy trail) still verify.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from trail_helpers import det, pre_upgrade_store, recompute_sha256, tamper, trail_config

from dcops.alerts import AlertStore
from dcops.alerts.chain import ROTATE, rotate_key
from dcops.alerts.trailkey import Keyring, keyed_hash, legacy_hash
from dcops.errors import ConfigError


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alerts.db'}"


@pytest.fixture
def store(url: str, tmp_path: Path) -> Iterator[AlertStore]:
    """Six records (alert.create x3, ack, note, resolve), then an anchor of the head."""
    s = AlertStore(url, trail=trail_config(tmp_path))
    s.accept([det(1), det(2), det(3)])
    s.acknowledge(1, "ana")
    s.add_note(1, "ana", "blocked at the firewall")
    s.resolve(1, "ana")
    s.trail.anchor_now(s.engine)
    yield s
    s.close()


def test_records_are_hmac_chained_with_a_private_key_file(store: AlertStore,
                                                          tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "trail.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = Keyring.load(key_file)
    recs = store.audit_records()
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5, 6]
    assert {r.key_id for r in recs} == {ring.current_id}
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE seq = 4")).one()
    assert row.hash == keyed_hash(ring.current.secret, key_id=row.key_id, prev_hash=row.prev_hash,
                                  seq=4, ts=row.ts, actor=row.actor, action=row.action,
                                  target=row.target, detail_text=row.detail)
    r = store.verify_audit()
    assert r.ok and r.checked == 6, r
    assert (r.anchors_checked, r.last_anchor_seq, r.key_ids) == (1, 6, (ring.current_id,))
    assert r.warnings == ()


def test_edit_a_field(store: AlertStore) -> None:
    tamper(store.engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 4 and r.checked == 3
    assert "HMAC" in r.reason and "does not match the fields" in r.reason


def test_delete_a_record(store: AlertStore) -> None:
    tamper(store.engine, "DELETE FROM audit_log WHERE seq = 3")
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 3
    assert r.reason == "record 3 is missing (next is 4): deleted"


def test_reorder_two_records(store: AlertStore) -> None:
    tamper(store.engine, "UPDATE audit_log SET seq = -1 WHERE seq = 4",
           "UPDATE audit_log SET seq = 4 WHERE seq = 5",
           "UPDATE audit_log SET seq = 5 WHERE seq = -1")
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 4
    assert "link to record 3 is broken" in r.reason


def test_truncate_the_tail_and_rewrite_the_head(store: AlertStore) -> None:
    with store.engine.connect() as conn:
        h4 = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 4")).scalar_one()
    tamper(store.engine, "DELETE FROM audit_log WHERE seq > 4",
           "UPDATE audit_head SET seq = 4, hash = :h WHERE id = 1", h=h4)
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 5
    assert "the trail ends at record 4" in r.reason and "records 5..6 (at least) were removed" \
        in r.reason and "anchors.jsonl:1" in r.reason


def test_truncation_without_anchors_is_not_claimed_safe(url: str, tmp_path: Path) -> None:
    """Without anchors a consistent truncation cannot be seen: verify says so, every time."""
    s = AlertStore(url, trail=trail_config(tmp_path, anchor_key=None, anchor_cert=None))
    try:
        s.accept([det(1), det(2)])
        r = s.verify_audit()
        assert r.ok and any("no anchor checked" in w for w in r.warnings)
    finally:
        s.close()


@pytest.mark.parametrize("start", [1, 4])
def test_old_attack_recompute_every_hash_and_the_head_with_sha256(store: AlertStore,
                                                                  start: int) -> None:
    tamper(store.engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    recompute_sha256(store.engine, start)
    r = store.verify_audit()
    assert not r.ok and r.first_bad == start
    assert "HMAC" in r.reason


def test_old_attack_downgraded_to_unkeyed_records(store: AlertStore) -> None:
    """Blanking the key ids makes every record look legacy: nothing vouches for them, and the
    anchored hash no longer matches."""
    tamper(store.engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    recompute_sha256(store.engine, 1, blank_key_id=True)
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 1
    assert "no keyed record vouches" in r.reason
    assert any("does not have the hash anchored" in p for p in r.problems)


def test_rotation_record_is_signed_by_the_old_key_and_the_new_key_chains_on(
        store: AlertStore, tmp_path: Path) -> None:
    old = Keyring.load(tmp_path / "keys" / "trail.key").current_id
    rec = rotate_key(store.engine, "adm", "yearly")
    store.add_note(2, "ana", "after the rotation")
    ring = Keyring.load(tmp_path / "keys" / "trail.key")
    new = ring.current_id
    assert rec.action == ROTATE and rec.key_id == old and rec.detail["new_key_id"] == new != old
    assert set(ring.keys) == {old, new}
    assert store.audit_records()[-1].key_id == new
    r = store.verify_audit()
    assert r.ok and r.checked == 8 and set(r.key_ids) == {old, new}, r


def test_a_record_signed_with_the_retired_key_after_rotation(store: AlertStore,
                                                             tmp_path: Path) -> None:
    """Someone holding only the old key forges a record after the rotation: located."""
    ring = Keyring.load(tmp_path / "keys" / "trail.key")
    old = ring.current
    rotate_key(store.engine, "adm")
    store.add_note(2, "ana", "real")
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE seq = 8")).one()
    forged = keyed_hash(old.secret, key_id=old.key_id, prev_hash=row.prev_hash, seq=8, ts=row.ts,
                        actor="mallory", action=row.action, target=row.target,
                        detail_text=row.detail)
    tamper(store.engine, "UPDATE audit_log SET actor = 'mallory', key_id = :k, hash = :h "
           "WHERE seq = 8", "UPDATE audit_head SET hash = :h, key_id = :k WHERE id = 1",
           k=old.key_id, h=forged)
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 8
    assert "retired key" in r.reason


def test_missing_or_wrong_key_file(store: AlertStore, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "trail.key"
    saved = key_file.read_bytes()
    key_file.unlink()
    Keyring.load_or_create(key_file)  # a different key under the same path
    fresh = AlertStore(store.url, trail=trail_config(tmp_path))
    try:
        r = fresh.verify_audit()
        assert not r.ok and r.first_bad == 1 and "not in" in r.reason
        key_file.unlink()
        r = fresh.verify_audit()
    finally:
        fresh.close()
    assert not r.ok and "does not exist" in r.reason
    key_file.write_bytes(saved)


def test_key_file_readable_by_others_is_refused(store: AlertStore, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "trail.key"
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible to others.*chmod 600"):
        Keyring.load(key_file)


def test_legacy_trail_is_reported_then_sealed_and_protected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    pre_upgrade_store(url, 4)
    s = AlertStore(url, trail=trail_config(tmp_path))
    try:
        r = s.verify_audit()
        assert not r.ok and r.first_bad == 1 and r.legacy_through == 4
        assert "records 1..4 are unkeyed (legacy SHA-256) and no keyed record vouches" in r.reason
        s.accept([det(1)])  # the first keyed write seals the legacy records first
        recs = s.audit_records()
        assert [(r.seq, r.action, r.key_id != "") for r in recs[3:]] == [
            (4, "alert.note", False), (5, "trail.keyed", True), (6, "alert.create", True)]
        assert recs[4].detail["legacy_through"] == 4
        r = s.verify_audit()
        assert r.ok and r.legacy_through == 4, r
        assert any("records 1..4 use the old unkeyed SHA-256 scheme" in w and
                   "protected only since record 5" in w for w in r.warnings)
        tamper(s.engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        recompute_sha256(s.engine, 2, end=4)  # redo the legacy chain (keyed records cannot be)
        r = s.verify_audit()
        assert not r.ok and r.first_bad == 5  # the keyed seal's link no longer matches
        assert "link to record 4 is broken" in r.reason
    finally:
        s.close()


def test_unkeyed_record_inserted_after_keyed_chaining(store: AlertStore) -> None:
    with store.engine.connect() as conn:
        h6 = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 6")).scalar_one()
    h7 = legacy_hash(h6, seq=7, ts="2026-12-01T00:00:00.000000Z", actor="mallory",
                     action="alert.note", target="alert:1", detail_text="{}")
    tamper(store.engine, "INSERT INTO audit_log (seq, ts, actor, action, target, detail, "
           "prev_hash, hash, key_id) VALUES (7, '2026-12-01T00:00:00.000000Z', 'mallory', "
           "'alert.note', 'alert:1', '{}', :p, :h, '')",
           "UPDATE audit_head SET seq = 7, hash = :h WHERE id = 1", p=h6, h=h7)
    r = store.verify_audit()
    assert not r.ok and r.first_bad == 7 and "no key id" in r.reason


def test_verify_json_names_every_problem(store: AlertStore) -> None:
    tamper(store.engine, "UPDATE audit_log SET detail = '{}' WHERE seq = 2",
           "DELETE FROM audit_log WHERE seq = 5")
    r = store.verify_audit()
    assert r.first_bad == 2
    assert [p.split(":")[0] for p in r.problems][:2] == ["record 2", "record 5"]
    assert json.loads(json.dumps(r.problems))
