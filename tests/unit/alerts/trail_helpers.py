"""Shared pieces of the trail tests: a configured trail, an attacker's SQL, a pre-upgrade store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

from dcops.alerts.anchor import make_lab_signer
from dcops.alerts.chain import GENESIS, canonical
from dcops.alerts.db import MIGRATIONS, normalise_url
from dcops.alerts.trail import TrailConfig
from dcops.alerts.trailkey import legacy_hash
from dcops.model.event import Detection

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def lab_pki(base: Path) -> tuple[Path, Path]:
    """A lab anchor key and self-signed certificate under `base`."""
    key, cert = base / "pki" / "anchor.key", base / "pki" / "anchor.crt"
    if not key.exists():
        make_lab_signer(key, cert, "dcops-trail-test")
    return key, cert


def trail_config(base: Path, **kw: Any) -> TrailConfig:
    """Key file, anchor key/cert and anchor file under `base`; anchors only when asked."""
    key, cert = lab_pki(base)
    opts: dict[str, Any] = {"key_file": base / "keys" / "trail.key", "anchor_key": key,
                            "anchor_cert": cert, "anchor_file": base / "anchors.jsonl",
                            "anchor_every": 1000, "anchor_interval": 3600.0}
    opts.update(kw)
    return TrailConfig(**opts)


def det(n: int, host: str = "web01") -> Detection:
    """A distinct detection (its own key, so each one creates an alert and a record)."""
    return Detection(f"r{n}", f"rule {n}", "high", T0, (f"e{n}",), key=f"{host}-{n}", host=host)


def tamper(engine: Engine, *statements: str, **params: Any) -> None:
    """Run SQL as someone with write access to the database (on PostgreSQL: a superuser or the
    owner who switches the append-only trigger off for the session, as an attacker would)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for s in statements:
            conn.execute(text(s), params)


def recompute_sha256(engine: Engine, start: int, blank_key_id: bool = False,
                     end: int | None = None) -> None:
    """The old attack: recompute every hash from `start` on with plain SHA-256, and the head
    (or only records `start`..`end`, leaving the head)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).all()
    prev = GENESIS if start == 1 else next(r.hash for r in rows if r.seq == start - 1)
    updates = []
    for r in rows:
        if r.seq < start or (end is not None and r.seq > end):
            continue
        h = legacy_hash(prev, seq=r.seq, ts=r.ts, actor=r.actor, action=r.action,
                        target=r.target, detail_text=r.detail)
        updates.append((r.seq, prev, h))
        prev = h
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for seq, p, h in updates:
            conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h"
                              + (", key_id = ''" if blank_key_id else "") + " WHERE seq = :s"),
                         {"p": p, "h": h, "s": seq})
        if end is None:
            conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"
                              + (", key_id = ''" if blank_key_id else "") + " WHERE id = 1"),
                         {"s": updates[-1][0], "h": prev})


def pre_upgrade_store(url: str, n: int) -> None:
    """A store at the revision before keyed chaining, holding `n` records of the old scheme."""
    engine = create_engine(normalise_url(url))
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_auth")
        prev = GENESIS
        for seq in range(1, n + 1):
            ts, target = f"2025-01-0{seq % 9 + 1}T00:00:00.000000Z", f"alert:{seq}"
            detail = canonical({"text": f"note {seq}"})
            digest = legacy_hash(prev, seq=seq, ts=ts, actor="ana", action="alert.note",
                                 target=target, detail_text=detail)
            conn.execute(text("INSERT INTO audit_log (seq, ts, actor, action, target, detail, "
                              "prev_hash, hash) VALUES (:seq, :ts, 'ana', 'alert.note', :target, "
                              ":detail, :prev_hash, :hash)"),
                         {"seq": seq, "ts": ts, "target": target, "detail": detail,
                          "prev_hash": prev, "hash": digest})
            prev = digest
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                     {"s": n, "h": prev})
    engine.dispose()
