"""Parity: dcops flags exactly the events pySigma's SQLite backend flags, rule by rule.

For every SigmaHQ rule in ../shared/sigmahq that pysigma-backend-sqlite converts, the backend's
query runs on SQLite (stdlib sqlite3, REGEXP as Python's re.search) over the same corpus that
dcops' engine scans. Both sides see only events of the rule's logsource (the backend has no
notion of logsource, so each rule queries a view of its logsource's events).

The backend runs with collate_nocase=True (Sigma matches strings case-insensitively; without it
the backend's `=` is case-sensitive) and fulltext_field="message" (keywords search the message,
as dcops does).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma_corpus import LS, Fields, Synth, benign_for, logsource_of, rule_fields

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

pytestmark = pytest.mark.integration

# External test data (../shared beside the checkout, or DCOPS_SHARED_DIR): read, never copied.
_BESIDE = Path(__file__).resolve().parents[4] / "shared"
SHARED = Path(os.environ.get("DCOPS_SHARED_DIR") or next(
    (p for p in (_BESIDE, Path("/work/shared")) if p.is_dir()), _BESIDE))
SIGMAHQ = SHARED / "sigmahq"
DIRS = [SIGMAHQ / "rules" / "linux", SIGMAHQ / "rules" / "network",
        SIGMAHQ / "rules-threat-hunting" / "linux"]

# Disagreements that are the peer's bugs, by rule id, with the case that shows it.
PEER_BUGS: dict[str, str] = {}


def _regexp(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return re.search(pattern, str(value)) is not None


def _corpus(rules: list[SigmaRule]) -> list[tuple[LS, Fields]]:
    synth = Synth(seed=20261122)
    out: list[tuple[LS, Fields]] = []
    seen_ls: set[LS] = set()
    for r in rules:
        ls = logsource_of(r)
        if ls not in seen_ls:
            seen_ls.add(ls)
            out += [(ls, e) for e in benign_for(ls)]
        try:
            pos = synth.positives(r, 3)
        except (SigmaError, IndexError, ValueError):
            continue
        for e in pos:
            out.append((ls, e))
            out += [(ls, m) for m in synth.near_misses(e)]
    for _, f in out:
        f.setdefault("message", "")
    return out


def _sqlite(
    corpus: list[tuple[LS, Fields]], rules: list[SigmaRule]
) -> tuple[sqlite3.Connection, dict[str, str]]:
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, _regexp, deterministic=True)
    cols: dict[str, str] = {}  # lower -> spelling (SQLite column names ignore case)
    for r in rules:
        for k in rule_fields(r):
            cols.setdefault(k.lower(), k)
    for _, f in corpus:
        for k in f:
            cols.setdefault(k.lower(), k)
    spec = ", ".join(f"`{c}` COLLATE NOCASE" for c in cols.values())
    db.execute(f"CREATE TABLE logs (eid INTEGER, ls_p TEXT, ls_s TEXT, ls_c TEXT, {spec})")
    for i, (ls, f) in enumerate(corpus):
        names = ["eid", "ls_p", "ls_s", "ls_c", *(f"`{cols[k.lower()]}`" for k in f)]
        vals = [i, *ls, *(v if isinstance(v, int | float | str) else str(v) for v in f.values())]
        db.execute(f"INSERT INTO logs ({', '.join(names)}) VALUES "
                   f"({', '.join('?' * len(vals))})", vals)
    return db, cols


def _view(db: sqlite3.Connection, ls: LS, views: dict[LS, str]) -> str:
    if ls not in views:
        name = f"v{len(views)}"
        conds = [f"{c} = '{v}'" for c, v in zip(("ls_p", "ls_s", "ls_c"), ls, strict=True) if v]
        db.execute(f"CREATE VIEW {name} AS SELECT * FROM logs WHERE {' AND '.join(conds) or '1'}")
        views[ls] = name
    return views[ls]


@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason=f"SigmaHQ rules not present at {SIGMAHQ}")
def test_parity_with_sqlite_backend() -> None:
    coll = SigmaCollection.load_ruleset([str(d) for d in DIRS])
    rules = [r for r in coll.rules if isinstance(r, SigmaRule)]
    corpus = _corpus(rules)
    # dcops side
    engine = Engine(load_rules(DIRS))
    ours: dict[str, set[int]] = defaultdict(set)
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    for i, (ls, f) in enumerate(corpus):
        ev = Event(id=str(i), timestamp=t0, source="parity", logsource=LogSource(*ls), fields=f)
        for r in engine.matching_rules(ev):
            ours[r.id].add(i)
    # peer side
    db, _cols = _sqlite(corpus, rules)
    views: dict[LS, str] = {}
    theirs: dict[str, set[int]] = {}
    unconvertible: list[str] = []
    for r in SigmaCollection.load_ruleset([str(d) for d in DIRS]).rules:
        view = _view(db, logsource_of(r), views)
        try:
            queries = sqliteBackend(table=view, collate_nocase=True,
                                    fulltext_field="message").convert_rule(r)
        except SigmaError as exc:
            unconvertible.append(f"{r.title}: {exc}")
            continue
        got: set[int] = set()
        for q in queries:
            got |= {row[0] for row in db.execute(f"SELECT eid FROM ({q})")}
        theirs[str(r.id)] = got
    # compare
    agree, differ = 0, []
    for rid, peer in sorted(theirs.items()):
        mine = ours.get(rid, set())
        if mine == peer:
            agree += 1
        elif rid not in PEER_BUGS:
            differ.append((rid, sorted(mine - peer)[:3], sorted(peer - mine)[:3]))
    flagged = sum(len(v) for v in theirs.values())
    covered = sum(1 for v in theirs.values() if v)
    print(f"\nparity: {len(corpus)} events, {len(theirs)} rules converted by the SQLite backend "
          f"({len(unconvertible)} not), {flagged} rule hits, {covered} rules hit at least once; "
          f"agreement {agree}/{len(theirs)} rules ({100 * agree / max(len(theirs), 1):.1f} %), "
          f"{len(PEER_BUGS)} documented peer bug(s)")
    for rid, only_ours, only_theirs in differ:
        print(f"  DIFF {rid}: only dcops {only_ours}, only sqlite {only_theirs}")
        for i in (only_ours + only_theirs)[:1]:
            print(f"    event {i}: {corpus[i]}")
    assert covered > 0.8 * len(theirs)  # the synthesised positives really hit most rules
    assert differ == []
