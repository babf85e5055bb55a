"""Parity on Windows: dcops flags exactly what pySigma's SQLite backend flags, umbrella included.

A corpus synthesised from SigmaHQ's Windows registry_event/_add/_delete, DNS, remote-thread and
named-pipe rules (read from ../shared/sigmahq, never copied) plus benign Windows events runs
through both. An event of a registry_add/_set/_delete/_rename category is also a `registry_event`
one (SigmaHQ's taxonomy: registry_event covers Sysmon 12, 13 and 14): each positive of a
registry_event rule is also sent as a registry_set event (a Sysmon 13), and on the SQLite side
the view of a registry_event rule holds the events of every registry category. (The 200-odd
registry_set rules stay out to keep this under CI's per-test budget.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma_corpus import LS, Fields, Synth, logsource_of
from test_detect_sigmahq_parity import SIGMAHQ, _sqlite

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

pytestmark = pytest.mark.integration

WIN = SIGMAHQ / "rules" / "windows"
REG = WIN / "registry"
DIRS = [REG / "registry_event", REG / "registry_add", REG / "registry_delete", WIN / "dns_query",
        WIN / "create_remote_thread", WIN / "pipe_created"]
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
    differ = [
        (rid, sorted(ours.get(rid, set()) - peer)[:3], sorted(peer - ours.get(rid, set()))[:3])
        for rid, peer in sorted(theirs.items())
        if ours.get(rid, set()) != peer and rid not in rejected
    ]
    agree = len(theirs) - len(differ)
    print(f"\nwindows parity: {len(corpus)} events, {len(theirs)} rules converted "
          f"({unconvertible} not, {len(rejected)} rejected by dcops), {umbrella_hits} umbrella "
          f"hits; agreement {agree}/{len(theirs)}")  # fmt: skip
    for rid, only_ours, only_theirs in differ:
        print(f"  DIFF {rid}: only dcops {only_ours}, only sqlite {only_theirs}")
        for i in (only_ours + only_theirs)[:1]:
            print(f"    event {i}: {corpus[i]}")
    assert umbrella_hits > 0  # registry_event rules really saw registry_set/_add events
    assert sum(1 for v in theirs.values() if v) > 0.8 * len(theirs)
    assert differ == []
