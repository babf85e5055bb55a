"""Parity on Windows: dcops flags exactly what pySigma's SQLite backend flags, on every SigmaHQ
Windows rule (rules/windows and rules-threat-hunting/windows, 2,535 in the snapshot), umbrella
categories included.

A corpus synthesised from the rules (positives and near misses, read from ../shared/sigmahq, never
copied) plus benign Windows events runs through both. An event of a registry_add/_set/_delete/
_rename category is also a `registry_event` one (SigmaHQ's taxonomy: registry_event covers Sysmon
12, 13 and 14): each positive of a registry_event rule is also sent as a registry_set event, and on
the SQLite side the view of a registry_event rule holds the events of every registry category.

Two things the peer does otherwise than Sigma are made equal or checked, never waved through by
rule id: SQLite folds case for ASCII only, so it gets Python's lowercasing for NOCASE and LIKE (as
dcops matches `Администратор` or `Arrêté`); and it converts `|cidr` to a text pattern
(`LIKE 'fc__:%'`), so a rule may differ only on events where that pattern and the address test
answer differently (`_cidr_disagrees`), and those rules are printed.
"""

from __future__ import annotations

import ipaddress
import re
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import SigmaCIDRExpression
from sigma_corpus import LS, Fields, Synth, logsource_of
from test_detect_sigmahq_parity import SIGMAHQ, _sqlite

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

pytestmark = pytest.mark.integration

WIN = SIGMAHQ / "rules" / "windows"
DIRS = [WIN, SIGMAHQ / "rules-threat-hunting" / "windows"]
REGISTRY = ("registry_add", "registry_set", "registry_delete", "registry_rename")
UMBRELLA = {"registry_event": ("registry_event", *REGISTRY)}  # the taxonomy, written out here

BENIGN: dict[str, list[Fields]] = {
    "registry_set": [
        {"EventID": 13, "EventType": "SetValue", "Image": "C:\\Windows\\System32\\svchost.exe",
         "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\"
         "Auto Update\\LastOnlineScanTimeForAppCategory",
         "Details": "QWORD (0x01db3e20-0x5a1c9b40)"},
        {"EventID": 13, "EventType": "SetValue",
         "Image": "C:\\Program Files\\VNPT-CA\\Plugin\\VnptCaPlugin.exe",
         "TargetObject": "HKU\\S-1-5-21-1-2-3-1107\\SOFTWARE\\VNPT-CA\\Plugin\\LastToken",
         "Details": "0"},
    ],
    "registry_add": [
        {"EventID": 12, "EventType": "CreateKey", "Image": "C:\\Windows\\explorer.exe",
         "TargetObject": "HKU\\S-1-5-21-1-2-3-1107\\SOFTWARE\\Microsoft\\Office\\16.0\\Word\\"
         "Reading Locations\\Document 0"},
    ],
    "dns_query": [
        {"EventID": 22, "QueryName": "dichvucong.dongnai.gov.vn", "QueryStatus": "0",
         "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"},
    ],
    "pipe_created": [
        {"EventID": 17, "PipeName": "\\mojo.4412.5520.1234567890", "EventType": "CreatePipe",
         "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"},
    ],
    "create_remote_thread": [
        {"EventID": 8, "SourceImage": "C:\\Windows\\System32\\csrss.exe",
         "TargetImage": "C:\\Windows\\System32\\svchost.exe", "StartFunction": "CtrlRoutine"},
    ],
}


def _corpus(rules: list[SigmaRule]) -> list[tuple[LS, Fields]]:
    synth = Synth(seed=20261124)
    out: list[tuple[LS, Fields]] = []
    for cat, events in BENIGN.items():
        out += [(("windows", "", cat), dict(e)) for e in events]
    for r in rules:
        ls = logsource_of(r)
        try:
            pos = synth.positives(r, 3)
        except (SigmaError, IndexError, ValueError):
            continue
        for e in pos:
            out.append((ls, e))
            out += [(ls, m) for m in synth.near_misses(e)]
            if ls[2] == "registry_event":  # the same change seen as a Sysmon 13
                out.append(((ls[0], ls[1], "registry_set"), dict(e)))
    for _, f in out:
        f.setdefault("message", "")
    return out


def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if escape and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def unicode_case(db: sqlite3.Connection) -> None:
    """SQLite folds case for ASCII only (NOCASE, LIKE); Sigma matches case-insensitively, and
    dcops lowercases as Python does (`Администратор`, `Arrêté`): the peer gets the same folding,
    so a difference is a difference in matching, not in which letters have a case."""
    db.create_collation("NOCASE", lambda a, b: (a.lower() > b.lower()) - (a.lower() < b.lower()))
    cache: dict[tuple[str, str | None], re.Pattern[str]] = {}

    def like(pattern: str | None, value: object, escape: str | None = None) -> bool | None:
        if pattern is None or value is None:
            return None
        key = (pattern.lower(), escape)
        rx = cache.get(key)
        if rx is None:
            rx = cache[key] = _like_regex(*key)
        return rx.fullmatch(str(value).lower()) is not None

    db.create_function("like", 2, like, deterministic=True)
    db.create_function("like", 3, like, deterministic=True)


def _cidrs(rule: SigmaRule) -> list[tuple[str, SigmaCIDRExpression]]:
    out: list[tuple[str, SigmaCIDRExpression]] = []

    def walk(items: list[Any]) -> None:
        for it in items:
            if isinstance(it, SigmaDetection):
                walk(it.detection_items)
            elif it.field:
                out.extend((it.field, v) for v in it.value if isinstance(v, SigmaCIDRExpression))

    for det in rule.detection.detections.values():
        walk(det.detection_items)
    return out


def _cidr_disagrees(rule: SigmaRule, fields: Fields) -> bool:
    """True when one of the rule's `|cidr` tests answers otherwise as a text prefix (what the
    SQLite backend converts it to: `LIKE '127.%'`, `LIKE 'fc__:%'`) than as an address in a
    network (Sigma's meaning, and dcops'): `127..0.1` is no address, `fc0::1` is not in fc00::/7."""
    for name, cidr in _cidrs(rule):
        v = fields.get(name)
        if v is None:
            continue
        text = str(v)
        as_text = any(  # the expansion's wildcards as the peer's LIKE reads them
            re.fullmatch(re.escape(w.lower()).replace(r"\?", ".").replace(r"\*", ".*"),
                         text.lower(), re.DOTALL)
            for w in cidr.expand())
        try:
            ip = ipaddress.ip_address(text.strip())
        except ValueError:
            ip = None
        net = cidr.network
        if as_text != (ip is not None and ip.version == net.version and ip in net):
            return True
    return False


def _view_sql(ls: LS) -> str:
    conds = [f"{c} = '{v}'" for c, v in zip(("ls_p", "ls_s"), ls[:2], strict=True) if v]
    if ls[2]:
        cats = ", ".join(f"'{c}'" for c in UMBRELLA.get(ls[2], (ls[2],)))
        conds.append(f"ls_c IN ({cats})")
    return f"SELECT * FROM logs WHERE {' AND '.join(conds) or '1'}"


@pytest.mark.skipif(not WIN.is_dir(), reason=f"SigmaHQ Windows rules not present at {WIN}")
def test_windows_parity_with_sqlite_backend() -> None:
    rules = [r for r in SigmaCollection.load_ruleset([str(d) for d in DIRS]).rules
             if isinstance(r, SigmaRule)]  # fmt: skip
    corpus = _corpus(rules)
    ruleset = load_rules(DIRS)
    engine = Engine(ruleset)
    rejected = {str(r.id) for r in rules for x in ruleset.rejected if f"({r.id})" in x.rule}
    ours: dict[str, set[int]] = defaultdict(set)
    t0 = datetime(2026, 11, 24, tzinfo=UTC)
    umbrella_hits = 0
    for i, (ls, f) in enumerate(corpus):
        ev = Event(id=str(i), timestamp=t0, source="parity", logsource=LogSource(*ls), fields=f)
        for r in engine.matching_rules(ev):
            ours[r.id].add(i)
            umbrella_hits += r.category == "registry_event" and ls[2] != "registry_event"
    db, _cols = _sqlite(corpus, rules)
    unicode_case(db)
    theirs: dict[str, set[int]] = {}
    unconvertible = 0
    for n, r in enumerate(rules):
        db.execute(f"CREATE VIEW w{n} AS {_view_sql(logsource_of(r))}")
        try:
            queries = sqliteBackend(table=f"w{n}", collate_nocase=True,
                                    fulltext_field="message").convert_rule(r)  # fmt: skip
        except SigmaError:
            unconvertible += 1
            continue
        got: set[int] = set()
        for q in queries:
            got |= {row[0] for row in db.execute(f"SELECT eid FROM ({q})")}
        theirs[str(r.id)] = got
    by_id = {str(r.id): r for r in rules}
    differ, cidr_text = [], []
    for rid, peer in sorted(theirs.items()):
        mine = ours.get(rid, set())
        if mine == peer or rid in rejected:
            continue
        if all(_cidr_disagrees(by_id[rid], corpus[i][1]) for i in mine ^ peer):
            cidr_text.append(rid)  # the peer's CIDR test is a text prefix (see _cidr_disagrees)
            continue
        differ.append((rid, sorted(mine - peer)[:3], sorted(peer - mine)[:3]))
    agree = len(theirs) - len(differ) - len(cidr_text)
    print(f"\nwindows parity: {len(corpus)} events, {len(theirs)} rules converted "
          f"({unconvertible} not, {len(rejected)} rejected by dcops), {umbrella_hits} umbrella "
          f"hits; agreement {agree}/{len(theirs)}, {len(cidr_text)} rule(s) differing only where "
          f"the peer reads a CIDR as a text prefix ({', '.join(cidr_text)})")  # fmt: skip
    for rid, only_ours, only_theirs in differ:
        print(f"  DIFF {rid}: only dcops {only_ours}, only sqlite {only_theirs}")
        for i in (only_ours + only_theirs)[:1]:
            print(f"    event {i}: {corpus[i]}")
    assert umbrella_hits > 0  # registry_event rules really saw registry_set/_add events
    assert sum(1 for v in theirs.values() if v) > 0.8 * len(theirs)
    assert differ == []
