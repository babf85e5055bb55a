"""Tamper-evident audit trail: every action is a record chained to the previous one by SHA-256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from dcops.alerts import schema
from dcops.alerts.timeutil import iso, now

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action: who did what to which target, when."""

    seq: int
    ts: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain verification; `first_bad` names the first altered or missing record."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str = ""


def canonical(detail: dict[str, Any]) -> str:
    """The exact text the hash covers for the detail (sorted keys, compact)."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def record_hash(prev_hash: str, *, seq: int, ts: str, actor: str, action: str, target: str,
                detail_text: str) -> str:
    """SHA-256 over the previous hash and every field of the record."""
    payload = "\x1f".join([prev_hash, str(seq), ts, actor, action, target, detail_text])
    return hashlib.sha256(payload.encode()).hexdigest()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that holds the chain-head lock from its start.

    Every writer takes this one lock first, so lock order is the same everywhere (no deadlocks)
    and dedup decisions never race.
    """
    with engine.begin() as conn:
        lock(conn)
        yield conn


def lock(conn: Connection) -> None:
    """Take the chain-head lock now, serialising this write transaction with all others."""
    conn.execute(select(schema.audit_head.c.seq).where(schema.audit_head.c.id == 1)
                 .with_for_update()).one()


def append(conn: Connection, actor: str, action: str, target: str,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record inside the caller's transaction (locks the chain head)."""
    head = conn.execute(
        select(schema.audit_head.c.seq, schema.audit_head.c.hash)
        .where(schema.audit_head.c.id == 1).with_for_update()
    ).one()
    seq = int(head.seq) + 1
    ts = iso(now())
    text = canonical(detail or {})
    digest = record_hash(head.hash, seq=seq, ts=ts, actor=actor, action=action, target=target,
                         detail_text=text)
    conn.execute(schema.audit.insert().values(
        seq=seq, ts=ts, actor=actor, action=action, target=target, detail=text,
        prev_hash=head.hash, hash=digest))
    conn.execute(update(schema.audit_head).where(schema.audit_head.c.id == 1)
                 .values(seq=seq, hash=digest))
    return AuditRecord(seq, ts, actor, action, target, detail or {}, head.hash, digest)


def _row_to_record(row: Any) -> AuditRecord:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = {"_unparseable": row.detail}
    return AuditRecord(row.seq, row.ts, row.actor, row.action, row.target, detail,
                       row.prev_hash, row.hash)


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
    """Recompute the chain from genesis; report the first record whose content or link is wrong."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for row in conn.execute(select(schema.audit).order_by(schema.audit.c.seq)):
        if row.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq,
                                f"record {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != prev:
            return VerifyResult(False, checked, row.seq,
                                "link to the previous record is broken (prev_hash differs)")
        digest = record_hash(prev, seq=row.seq, ts=row.ts, actor=row.actor, action=row.action,
                             target=row.target, detail_text=row.detail)
        if digest != row.hash:
            return VerifyResult(False, checked, row.seq,
                                "content was altered (hash does not match the fields)")
        prev = row.hash
        expected_seq += 1
        checked += 1
    head = conn.execute(select(schema.audit_head).where(schema.audit_head.c.id == 1)).one()
    if head.seq != checked or head.hash != prev:
        return VerifyResult(False, checked, checked + 1 if head.seq > checked else checked,
                            f"chain head says {head.seq} records but {checked} verify "
                            "(records were deleted at the end)")
    return VerifyResult(True, checked)
