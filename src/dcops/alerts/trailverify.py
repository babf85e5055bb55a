"""Verify the audit trail: every record's HMAC, every link, the key sequence, the head, the anchors.

The walk goes on after the first problem (each record is checked against its stored predecessor),
so a report names every damaged place; `first_bad` is the lowest record concerned.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from dcops.alerts import schema
from dcops.alerts.anchor import Anchor, check_anchor, load_certs, read_anchors
from dcops.alerts.chain import GENESIS, KEYED, ROTATE, VerifyResult
from dcops.alerts.trail import Trail, TrailConfig
from dcops.alerts.trailkey import Keyring, keyed_hash, legacy_hash
from dcops.errors import DcopsError

MAX_PROBLEMS = 50


@dataclass
class _Walk:
    """State of one verification walk."""

    ring: Keyring | None
    key_problem: str
    anchors: dict[int, list[Anchor]]
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    # Anchor mismatches locate a range only (its first record): used when nothing is pinpointed.
    ranges: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    prev_hash: str = GENESIS
    expected: int = 1
    rows: int = 0
    legacy_through: int = 0
    keyed_since: int | None = None
    chain_kid: str | None = None
    kid_since: int = 0
    key_reported: bool = False
    good_anchor: int = 0
    anchors_ok: int = 0
    first_keyed_ts: str = ""
    seen_anchors: set[tuple[int, str, str, str]] = field(default_factory=set)

    def bad(self, seq: int | None, text: str) -> None:
        self.problems.append((seq, text))


def _detail(row: Any) -> dict[str, Any]:
    try:
        d = json.loads(row.detail)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _check_keyed(w: _Walk, row: Any) -> bool:
    """HMAC and key sequence of a keyed record; True when its HMAC verifies."""
    seq, kid = row.seq, row.key_id
    if w.ring is None:
        if not w.key_reported:
            w.bad(seq, f"cannot check the HMAC of keyed records: {w.key_problem}")
            w.key_reported = True
        return False
    key = w.ring.get(kid)
    if key is None:
        w.bad(seq, f"signed with key id {kid!r}, which is not in {w.ring.source}")
        return False
    digest = keyed_hash(key.secret, key_id=kid, prev_hash=row.prev_hash, seq=seq, ts=row.ts,
                        actor=row.actor, action=row.action, target=row.target,
                        detail_text=row.detail)
    if digest != row.hash:
        w.bad(seq, f"content was altered: the HMAC (key {kid}) does not match the fields")
        return False
    if w.chain_kid is not None and kid != w.chain_kid:
        w.bad(seq, f"signed with key {kid} but the trail's key is {w.chain_kid} since record "
                   f"{w.kid_since}: written with a retired key")
    return True


def _legacy(w: _Walk, row: Any) -> None:
    seq = row.seq
    if w.keyed_since is not None:
        w.bad(seq, f"record has no key id (unkeyed SHA-256) although keyed chaining began at "
                   f"record {w.keyed_since}: inserted or rewritten without the key")
        return
    w.legacy_through = seq
    if legacy_hash(row.prev_hash, seq=seq, ts=row.ts, actor=row.actor, action=row.action,
                   target=row.target, detail_text=row.detail) != row.hash:
        w.bad(seq, "content was altered (legacy SHA-256 does not match the fields)")


def _keyed(w: _Walk, row: Any) -> None:
    seq = row.seq
    first = w.keyed_since is None
    if first:
        w.keyed_since = seq
        w.first_keyed_ts = row.ts
    ok = _check_keyed(w, row)
    detail = _detail(row)
    if first and w.legacy_through and w.ring is not None and not (
            ok and row.action == KEYED and detail.get("legacy_through") == w.legacy_through
            and detail.get("legacy_head") == row.prev_hash):
        w.bad(1, f"records 1..{w.legacy_through} are unkeyed (legacy SHA-256) and record {seq} "
                 "is not the keyed record that vouches for them: they were rewritten to the old "
                 "scheme or inserted")
    if ok and row.action == ROTATE and isinstance(detail.get("new_key_id"), str):
        w.chain_kid, w.kid_since = detail["new_key_id"], seq + 1
    elif ok and w.chain_kid is None:
        w.chain_kid, w.kid_since = row.key_id, seq


def _check_anchors(w: _Walk, seq: int, stored_hash: str, anchors: list[Anchor]) -> None:
    for a in anchors:
        w.seen_anchors.add(_anchor_id(a))
        if a.hash != stored_hash:
            start = w.good_anchor + 1
            w.ranges.append((start, f"record {seq} does not have the hash anchored at {a.where} "
                                    f"({a.time}): a record in {start}..{seq} was rewritten, or "
                                    "records reordered"))
        else:
            w.good_anchor = max(w.good_anchor, seq)
            w.anchors_ok += 1


def _anchor_id(a: Anchor) -> tuple[int, str, str, str]:
    return (a.seq, a.hash, a.time, a.sig)


def _record(w: _Walk, row: Any) -> None:
    seq = row.seq
    link_known = seq == w.expected
    if not link_known:
        gap = (f"record {w.expected} is missing" if seq == w.expected + 1
               else f"records {w.expected}..{seq - 1} are missing")
        w.bad(w.expected, f"{gap} (next is {seq}): deleted")
    if link_known and row.prev_hash != w.prev_hash:
        w.bad(seq, f"link to record {seq - 1} is broken (prev_hash differs from its hash): "
                   "records reordered, replaced or inserted")
    if row.key_id:
        _keyed(w, row)
    else:
        _legacy(w, row)
    _check_anchors(w, seq, row.hash, w.anchors.pop(seq, []))
    w.prev_hash, w.expected = row.hash, seq + 1
    w.rows += 1


def _anchors(cfg: TrailConfig, w_problems: list[tuple[int | None, str]]
             ) -> tuple[dict[int, list[Anchor]], int]:
    """Valid anchors by seq, and how many anchors were read (invalid ones become problems)."""
    files = ([cfg.anchor_file] if cfg.anchor_file else []) + list(cfg.anchor_sources)
    found: list[Anchor] = []
    for f in files:
        if f == cfg.anchor_file and not f.exists():
            continue  # no anchor written yet (reported as a warning by the caller)
        got, bad = read_anchors(f)
        found += got
        w_problems += [(None, b) for b in bad]
    by_seq: dict[int, list[Anchor]] = {}
    if not found:
        return by_seq, 0
    try:
        certs = load_certs([p for p in (cfg.anchor_cert, *cfg.anchor_certs) if p is not None
                            and p.exists()])
        issuers = load_certs([cfg.anchor_ca]) if cfg.anchor_ca else []
    except DcopsError as exc:
        w_problems.append((None, f"anchors cannot be checked: {exc}"))
        return by_seq, len(found)
    if not certs:
        w_problems.append((None, f"{len(found)} anchor(s) found but no anchor certificate to "
                                 "check them (DCOPS_TRAIL_ANCHOR_CERT / --anchor-cert)"))
        return by_seq, len(found)
    for a in found:
        err = check_anchor(a, certs, issuers)
        if err:
            w_problems.append((None, err))
        else:
            by_seq.setdefault(a.seq, []).append(a)
    return by_seq, len(found)


def _has_anchor(path: Path) -> bool:
    """Whether the store's own anchor file holds at least one anchor line (valid or not)."""
    if not path.is_file():
        return False
    got, bad = read_anchors(path)
    return bool(got or bad)


def _keyring(trail: Trail) -> tuple[Keyring | None, str]:
    try:
        return trail.keyring(create=False), ""
    except DcopsError as exc:
        return None, str(exc)


def verify_trail(conn: Connection, trail: Trail) -> VerifyResult:
    """Walk the trail in seq order; see the module docstring."""
    return verify_from(conn, trail, None)[0]


@dataclass(frozen=True, slots=True)
class WalkPoint:
    """Where an earlier walk stopped: its last record and that record's hash, and the walk's
    state there (problems found so far included). Only `verify_from` reads the state."""

    seq: int
    hash: str
    state: _Walk
    full: bool  # the walk that stopped here began at record 1


def verify_from(conn: Connection, trail: Trail, start: WalkPoint | None
                ) -> tuple[VerifyResult, WalkPoint]:
    """Verify the trail, walking only the records after `start` (all of them when None).

    The records up to `start.seq` are taken as the earlier walk found them: a change to them
    since is not seen here (only a full walk, `start=None`, sees it), except that `start`'s own
    record must still have the hash it had. Anchors and keys are read afresh; an anchor of a record
    before `start` that the earlier walk did not see is checked against that record's stored
    hash; when that record's hash changed, everything is walked. Returns the result and the point
    to start from next time.
    """
    ring, key_problem = _keyring(trail)
    problems: list[tuple[int | None, str]] = []
    anchors, anchors_read = _anchors(trail.config, problems)
    file_problems = list(problems)  # the anchor files' own: read afresh by every walk
    a = schema.audit.c
    rows = select(schema.audit).order_by(a.seq)
    if start is not None:
        stored = conn.execute(select(a.hash).where(a.seq == start.seq)).scalar()
        if stored != start.hash:
            start = None  # the earlier walk's last record changed: walk everything
    if start is None:
        w = _Walk(ring, key_problem, anchors, problems)
    else:
        w = copy.deepcopy(start.state)
        w.ring, w.key_problem = ring, key_problem
        w.problems += problems
        old = {s: lst for s, lst in anchors.items() if s <= start.seq}
        new_old = {s: [x for x in lst if _anchor_id(x) not in w.seen_anchors]
                   for s, lst in old.items()}
        new_old = {s: lst for s, lst in new_old.items() if lst}
        if new_old:
            hashes = {int(r.seq): str(r.hash) for r in conn.execute(
                select(a.seq, a.hash).where(a.seq.in_(sorted(new_old))))}
            for s, lst in sorted(new_old.items()):
                if s in hashes:
                    _check_anchors(w, s, hashes[s], lst)
                else:  # the record is gone: _finish reports it
                    w.anchors.setdefault(s, []).extend(lst)
        w.anchors = {**{s: lst for s, lst in w.anchors.items() if s <= start.seq},
                     **{s: lst for s, lst in anchors.items() if s > start.seq}}
        rows = rows.where(a.seq > start.seq)
    for row in conn.execute(rows):
        _record(w, row)
    # The state to go on from: without the key ring and the anchor files' own problems (both are
    # read afresh by the next walk).
    kept = replace(w, ring=None, problems=[p for p in w.problems if p not in file_problems])
    point = WalkPoint(w.expected - 1, w.prev_hash, copy.deepcopy(kept), start is None)
    result = _conclude(w, conn, trail, anchors_read)
    return result, point


def _conclude(w: _Walk, conn: Connection, trail: Trail, anchors_read: int) -> VerifyResult:
    last = w.expected - 1
    c = trail.config
    if c.anchoring and last and c.anchor_file is not None and not _has_anchor(c.anchor_file):
        w.bad(None, f"anchoring is configured but the anchor file {c.anchor_file} is missing or "
                    "holds no anchor: deleted or emptied (a new store: run `dcops alerts "
                    "anchor`); removal of the newest records cannot be ruled out")
    _finish(w, conn, last, anchors_read)
    return _result(w, last)


def _finish(w: _Walk, conn: Connection, last: int, anchors_read: int) -> None:
    if w.legacy_through and w.keyed_since is None:
        w.bad(1, f"records 1..{w.legacy_through} are unkeyed (legacy SHA-256) and no keyed record "
                 "vouches for them: after upgrading run `dcops alerts trail seal` once; if this "
                 "trail had keyed records before, it was rewritten")
    elif w.legacy_through:
        w.warnings.append(
            f"records 1..{w.legacy_through} use the old unkeyed SHA-256 scheme (legacy / bản ghi "
            f"cũ không khóa): protected only since record {w.keyed_since} ({w.first_keyed_ts}); "
            "changes made to them before then cannot be detected")
    rest = sorted((a for lst in w.anchors.values() for a in lst), key=lambda a: a.seq)
    beyond = [a for a in rest if a.seq > last]
    for a in rest:
        if a.seq <= last:
            w.bad(a.seq, f"record {a.seq}, anchored at {a.where} ({a.time}), is missing")
    if beyond:
        top = beyond[-1]
        w.bad(last + 1, f"the trail ends at record {last} but {top.where} ({top.time}) anchors "
                        f"record {top.seq}: records {last + 1}..{top.seq} (at least) were removed")
    h = schema.audit_head.c
    head = conn.execute(select(h.seq, h.hash, h.key_id).where(h.id == 1)).one()
    if head.seq != last or (last and head.hash != w.prev_hash):
        w.bad(min(head.seq, last) + 1,
              f"chain head says {head.seq} records but the trail ends at record {last}: records "
              "were removed at the end or the head was rewritten")
    elif w.chain_kid and head.key_id != w.chain_kid:
        w.bad(None, f"chain head names key {head.key_id or '(none)'} but the trail's key is "
                    f"{w.chain_kid}: the head was rewritten")
    if last and not anchors_read:
        w.warnings.append("no anchor checked: removal of the newest records cannot be detected "
                          "(configure anchoring, see docs/triage.md)")
    elif last and w.good_anchor < last:
        w.warnings.append(f"records {w.good_anchor + 1}..{last} are not anchored yet")


def _result(w: _Walk, last: int) -> VerifyResult:
    located = sorted(((s, t) for s, t in w.problems if s is not None), key=lambda p: p[0])
    ranges = sorted(w.ranges, key=lambda p: p[0])
    unlocated = [t for s, t in w.problems if s is None]
    texts = [f"record {s}: {t}" for s, t in located] + [t for _, t in ranges] + unlocated
    located = located or ranges
    if len(texts) > MAX_PROBLEMS:
        texts = [*texts[:MAX_PROBLEMS], f"... and {len(texts) - MAX_PROBLEMS} more"]
    first_bad = located[0][0] if located else None
    reason = located[0][1] if located else (unlocated[0] if unlocated else "")
    checked = (first_bad - 1) if first_bad is not None else w.rows
    kids = tuple(sorted(w.ring.keys)) if w.ring is not None else ()
    return VerifyResult(ok=not (w.problems or w.ranges), checked=checked, first_bad=first_bad,
                        reason=reason, problems=tuple(texts), warnings=tuple(w.warnings),
                        legacy_through=w.legacy_through, anchors_checked=w.anchors_ok,
                        last_anchor_seq=w.good_anchor or None, key_ids=kids)
