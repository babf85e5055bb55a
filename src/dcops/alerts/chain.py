"""The audit trail's hash chain: each record chained to the previous one by an HMAC-SHA-256.

The HMAC key lives outside the database (`dcops.alerts.trailkey`), its id is stored with each
record, and the chain head is anchored outside the database with a PKI signature
(`dcops.alerts.anchor`, cadence in `dcops.alerts.trail`). Records written before keyed chaining
(``key_id = ''``) keep the old unkeyed SHA-256; the first keyed record after them is a
``trail.keyed`` record that names them, and verification reports them as legacy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from dcops.alerts import schema
from dcops.alerts.db import insert_rows
from dcops.alerts.timeutil import iso, now
from dcops.alerts.trail import trail_of
from dcops.alerts.trailkey import TrailKey, keyed_hash
from dcops.alerts.trailkey import legacy_hash as record_hash
from dcops.errors import AlertStoreError

GENESIS = "0" * 64
KEYED = "trail.keyed"  # first keyed record after legacy ones: detail names them
ROTATE = "trail.key_rotate"  # signed by the old key; detail new_key_id signs from the next one
SYSTEM_ACTOR = "dcops"

__all__ = ["GENESIS", "KEYED", "ROTATE", "AuditRecord", "VerifyResult", "append", "append_many",
           "canonical", "lock", "record_hash", "records", "rotate_key", "seal", "verify",
           "writing"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action: who did what to which target, when (and with which trail key)."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str = ""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a verification.

    `first_bad` is the first altered, missing or unvouched record and `reason` says what is wrong
    with it (or the first problem when no record can be named, e.g. a forged anchor). `checked`
    counts the records that verify before the first bad one. `warnings` are not failures but must
    be shown: legacy records, no anchors, records not yet anchored.
    """

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str = ""
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    legacy_through: int = 0
    anchors_checked: int = 0
    last_anchor_seq: int | None = None
    key_ids: tuple[str, ...] = ()


def canonical(detail: dict[str, Any]) -> str:
    """The exact text the hash covers for the detail (sorted keys, compact)."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that holds the chain-head lock from its start.

    Every writer takes this one lock first, so lock order is the same everywhere (no deadlocks)
    and dedup decisions never race. After the commit the head is anchored when due.
    """
    with engine.begin() as conn:
        lock(conn)
        yield conn
    trail_of(engine).committed(engine)


def lock(conn: Connection) -> None:
    """Take the chain-head lock now, serialising this write transaction with all others."""
    conn.execute(select(schema.audit_head.c.seq).where(schema.audit_head.c.id == 1)
                 .with_for_update()).one()


def _head(conn: Connection) -> Any:
    h = schema.audit_head.c
    return conn.execute(select(h.seq, h.hash, h.key_id).where(h.id == 1).with_for_update()).one()


def _write(conn: Connection, head_seq: int, head_hash: str, key: TrailKey, actor: str,
           action: str, target: str, detail: dict[str, Any], next_key_id: str) -> AuditRecord:
    seq = head_seq + 1
    ts = iso(now())
    text = canonical(detail)
    digest = keyed_hash(key.secret, key_id=key.key_id, prev_hash=head_hash, seq=seq, ts=ts,
                        actor=actor, action=action, target=target, detail_text=text)
    conn.execute(schema.audit.insert().values(
        seq=seq, ts=ts, actor=actor, action=action, target=target, detail=text,
        prev_hash=head_hash, hash=digest, key_id=key.key_id))
    conn.execute(update(schema.audit_head).where(schema.audit_head.c.id == 1)
                 .values(seq=seq, hash=digest, key_id=next_key_id))
    return AuditRecord(seq, ts, actor, action, target, detail, head_hash, digest, key.key_id)


def _signing_key(conn: Connection) -> tuple[Any, TrailKey, AuditRecord | None]:
    """The locked head, the key the next record must be signed with, and the seal record if made.

    The chain decides (the head names the key since the last rotation); the key file's current key
    starts the chain. Legacy records are first sealed by a `trail.keyed` record.
    """
    trail = trail_of(conn.engine)
    ring = trail.keyring()
    head = _head(conn)
    if head.key_id:
        key = ring.get(head.key_id)
        if key is None:
            raise AlertStoreError(f"the audit trail is signed with key {head.key_id}, which is "
                                  f"not in {ring.source}: restore that key (old keys are needed "
                                  "to write and to verify)")
        return head, key, None
    key = ring.current
    marker = None
    if head.seq > 0:
        marker = _write(conn, head.seq, head.hash, key, SYSTEM_ACTOR, KEYED, "trail",
               {"legacy_through": head.seq, "legacy_head": head.hash,
                "scheme": "hmac-sha256"}, key.key_id)
        trail.appended(force_anchor=True)
        head = _head(conn)
    return head, key, marker


def append(conn: Connection, actor: str, action: str, target: str,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record inside the caller's transaction (locks the chain head)."""
    head, key, _ = _signing_key(conn)
    rec = _write(conn, head.seq, head.hash, key, actor, action, target, detail or {}, key.key_id)
    trail_of(conn.engine).appended()
    return rec


def append_many(conn: Connection, entries: Sequence[tuple[str, str, str, dict[str, Any]]]
                ) -> list[AuditRecord]:
    """Append records in order inside the caller's transaction: the same records, one HMAC each
    chained to the previous one, as `append` called once per entry, but the head is read and
    written once and the records inserted in one executemany (the bulk webhook path).

    Each entry is (actor, action, target, detail).
    """
    if not entries:
        return []
    head, key, _ = _signing_key(conn)
    seq, prev = int(head.seq), str(head.hash)
    out: list[AuditRecord] = []
    rows: list[dict[str, Any]] = []
    for actor, action, target, detail in entries:
        seq += 1
        ts = iso(now())
        text = canonical(detail)
        digest = keyed_hash(key.secret, key_id=key.key_id, prev_hash=prev, seq=seq, ts=ts,
                            actor=actor, action=action, target=target, detail_text=text)
        rows.append({"seq": seq, "ts": ts, "actor": actor, "action": action, "target": target,
                     "detail": text, "prev_hash": prev, "hash": digest, "key_id": key.key_id})
        out.append(AuditRecord(seq, ts, actor, action, target, detail, prev, digest, key.key_id))
        prev = digest
    insert_rows(conn, schema.audit, rows)
    conn.execute(update(schema.audit_head).where(schema.audit_head.c.id == 1)
                 .values(seq=seq, hash=prev, key_id=key.key_id))
    trail = trail_of(conn.engine)
    for _ in entries:
        trail.appended()
    return out


def seal(engine: Engine) -> AuditRecord | None:
    """Start keyed chaining now: legacy records get their `trail.keyed` record (None if none)."""
    with writing(engine) as conn:
        head = _head(conn)
        if head.key_id or head.seq == 0:
            return None
        _, _, marker = _signing_key(conn)
    return marker


def rotate_key(engine: Engine, actor: str, reason: str = "") -> AuditRecord:
    """Rotate the HMAC key: a new key is saved, a rotation record signed by the old key names it,
    then the key file names it current. A crash in between leaves a trail that still verifies.
    """
    trail = trail_of(engine)
    ring = trail.keyring()
    new = ring.add_key()
    with writing(engine) as conn:
        head, key, _ = _signing_key(conn)
        detail = {"new_key_id": new.key_id, "reason": reason} if reason else {
            "new_key_id": new.key_id}
        rec = _write(conn, head.seq, head.hash, key, actor, ROTATE, "trail", detail, new.key_id)
        trail.appended(force_anchor=True)
    ring.set_current(new.key_id)
    return rec


def _row_to_record(row: Any) -> AuditRecord:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = {"_unparseable": row.detail}
    return AuditRecord(row.seq, row.ts, row.actor, row.action, row.target, detail,
                       row.prev_hash, row.hash, row.key_id)


def records(conn: Connection, target: str | None = None, limit: int | None = None,
            newest_first: bool = False) -> list[AuditRecord]:
    """Read records, optionally only those about one target (``alert:12``)."""
    q = select(schema.audit)
    if target is not None:
        q = q.where(schema.audit.c.target == target)
    q = q.order_by(schema.audit.c.seq.desc() if newest_first else schema.audit.c.seq)
    if limit is not None:
        q = q.limit(limit)
    return [_row_to_record(r) for r in conn.execute(q)]


def verify(conn: Connection) -> VerifyResult:
    """Check every record, HMAC, link, the head and every anchor; name the first bad record."""
    from dcops.alerts.trailverify import verify_trail

    return verify_trail(conn, trail_of(conn.engine))
