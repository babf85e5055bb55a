"""The literal index never loses a rule whose literal occurs, one value or a batch at a time."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from detect_helpers import make_event, rule

from dcops.detect import Engine, index
from dcops.detect.index import END, START, _FieldIndex

LITERALS = [
    ("contains", "bash -i >& /dev/tcp/"),
    ("contains", "bash -i >& /dev/udp/"),
    ("contains", "/dev/tcp/"),
    ("contains", "attempt to execute code on stack by"),
    ("contains", "chmod +x /tmp/"),
    ("contains", "; chmod +x"),
    ("contains", "xxyy"),
    ("contains", "xxyyzz"),
    ("contains", "base64 -d "),
    ("contains", "() { :; };"),
    ("contains", "qq"),
    ("contains", ":"),  # one character: checked on its own, not as a pattern
    ("eq", "usr bin"),
    ("eq", ""),
    ("prefix", "/var/"),
    ("prefix", "usr"),
    ("suffix", "/log"),
    ("suffix", "x.y:z "),
    ("contains", "i\u0307stanbul"),  # the lowercase of "\u0130stanbul" is one character longer
]


def _index() -> _FieldIndex:
    fi = _FieldIndex()
    for i, (kind, lit) in enumerate(LITERALS):
        fi.add(kind, lit, i)
    fi.freeze()
    assert fi.ac is not None
    return fi


def _expected(v: str) -> set[int]:
    low = v.lower()
    out = set()
    for i, (kind, lit) in enumerate(LITERALS):
        ok = {
            "contains": lit in low,
            "eq": low == lit,
            "prefix": low.startswith(lit),
            "suffix": low.endswith(lit),
        }[kind]
        if ok:
            out.add(i)
    return out


def _bits(mask: int) -> set[int]:
    """The gate numbers of a hit mask."""
    return {i for i in range(mask.bit_length()) if mask >> i & 1}


def _check(got: set[int], v: str) -> None:
    """Every rule whose literal occurs; no other unless the value holds a frame character
    (then an extra candidate is allowed: the rule itself decides)."""
    want = _expected(v)
    assert want <= got, repr(v)
    if START not in v and END not in v:
        assert got == want, repr(v)


def _values(rng: random.Random, n: int) -> list[str]:
    filler = "usr bin ls -l /var/log x.y:z \u0130stanbul Ab" + START + END
    lits = [lit for _, lit in LITERALS] + ["BASH -I >& /DEV/TCP/", "\u0130STANBUL", "USR BIN"]
    out = []
    for _ in range(n):
        chosen = rng.sample(range(len(lits)), rng.randint(0, 3))
        parts = [filler[rng.randint(0, len(filler)) :][: rng.randint(0, 12)]
                 for _ in range(len(chosen) + 1)]
        out.append(parts[0] + "".join(lits[c] + p for c, p in zip(chosen, parts[1:], strict=True)))
    return out


def test_one_value_finds_every_literal_that_occurs_and_no_other() -> None:
    fi = _index()
    for v in _values(random.Random(7), 3000):
        _check(_bits(fi.hits(v.lower())), v)


def test_a_batch_search_equals_one_search_per_value() -> None:
    fi = _index()
    rng = random.Random(11)
    for _ in range(200):
        vals = _values(rng, rng.randint(1, 40))
        if rng.random() < 0.5:  # an all-ASCII batch takes the one-lowercase path
            vals = [v.encode("ascii", "ignore").decode() for v in vals]
        owners = sorted(rng.sample(range(100), len(vals)))
        hits = [0] * 100
        fi.scan(vals, owners, hits)
        for v, k in zip(vals, owners, strict=True):
            _check(_bits(hits[k]), v)
        assert all(hits[k] == 0 for k in set(range(100)) - set(owners))


def test_a_batch_larger_than_one_search_is_split_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index, "_SCAN_MAX", 50)  # a few values per search
    fi = _index()
    vals = _values(random.Random(13), 400)
    hits = [0] * 400
    fi.scan(vals, list(range(400)), hits)
    for v, h in zip(vals, hits, strict=True):
        _check(_bits(h), v)


def test_overlapping_literals_are_all_found() -> None:
    fi = _index()
    # xxyy is a prefix of xxyyzz
    assert _bits(fi.hits("xxyyzz and bash -i >& /dev/udp/1")) == {1, 6, 7}
    assert fi.hits("nothing here") == 0


def test_an_and_of_two_literal_parts_runs_only_when_both_hit(
    engine_from: Callable[..., Engine],
) -> None:
    eng = engine_from(rule(
        "  sel_parent:\n    ParentImage|endswith: '\\explorer.exe'\n"
        "  sel_img:\n    Image|endswith: '\\rundll32.exe'\n"
        "  filter:\n    CommandLine|contains: 'shell32.dll'\n"
        "  condition: sel_parent and sel_img and not filter"))
    r = eng.rules[0]
    assert r.atoms is not None and r.also is not None  # two gates, none from the NOT
    assert {a[1:] for a in (*r.atoms, *r.also)} == {("suffix", "\\explorer.exe"),
                                                     ("suffix", "\\rundll32.exe")}
    parent = "C:\\Windows\\explorer.exe"
    only_parent = make_event({"ParentImage": parent, "Image": "C:\\x\\chrome.exe"})
    both = make_event({"ParentImage": parent, "Image": "C:\\Windows\\System32\\RUNDLL32.EXE",
                       "CommandLine": "rundll32 evil.dll,Run"})
    only_image = make_event({**both.fields, "ParentImage": "C:\\Windows\\System32\\cmd.exe"})
    filtered = make_event({**both.fields, "CommandLine": "rundll32 shell32.dll,Control_RunDLL"})
    evs = [only_parent, only_image, both, filtered]
    assert [len(c) for c in eng._prefilter(evs)] == [0, 0, 1, 1]  # the NOT is the rule's to run
    assert [d.event_ids[0] for d in eng.process(evs)] == [both.id]


def test_a_one_character_gate_is_dropped_beside_a_stronger_one_and_loses_nothing(
    engine_from: Callable[..., Engine],
) -> None:
    # SigmaHQ's "Remote File Copy": 'scp ' and ('@' and ':'): ':' is in nearly every message
    eng = engine_from(rule("  sel:\n    - 'scp '\n  sel_at:\n    - '@'\n  sel_colon:\n"
                           "    - ':'\n  condition: sel and sel_at and sel_colon",
                           logsource="product: linux"))
    r = eng.rules[0]
    assert r.also is not None  # the compiler offers two gates ...
    bucket = eng.bucket(make_event({}).logsource)
    indexed = [(f, fi.searched, fi.short) for f, fi in bucket.fields]
    assert all(not short for _, _, short in indexed), indexed  # ... the index keeps the strong
    hit = make_event({"message": "scp a user@host:/tmp"})
    near = make_event({"message": "scp a /tmp"})  # gate passes, the rule says no
    other = make_event({"message": "user@host: ok"})
    assert [len(c) for c in eng._prefilter([hit, near, other])] == [1, 1, 0]
    assert [d.event_ids[0] for d in eng.process([hit, near, other])] == [hit.id]


def test_memoised_fields_take_absent_numeric_and_list_values(
    engine_from: Callable[..., Engine],
) -> None:
    eng = engine_from(rule("  sel:\n    DestinationPort: 4444\n    Image|endswith: '/nc'\n"
                           "    Initiated: 'true'\n  condition: sel"))
    nc = {"Image": "/usr/bin/nc", "DestinationPort": 4444}
    evs = [make_event({**nc, "Initiated": True}),
           make_event({**nc, "DestinationPort": "4444", "Initiated": "true"}),
           make_event({"Image": "/usr/bin/nc", "Initiated": True}),
           make_event({"Image": ["/bin/x", "/usr/bin/nc"], "DestinationPort": [80, 4444],
                       "Initiated": [True]}),
           make_event({**nc, "DestinationPort": 4443, "Initiated": True}),
           make_event({**nc, "Image": "/usr/bin/ls", "Initiated": True}),
           make_event({**nc, "Initiated": 1}),  # equal to True in Python, "1" as text
           make_event({**nc, "DestinationPort": True, "Initiated": True})]  # 1 == True
    want = [True, True, False, True, False, False, False, False]
    for _ in range(2):  # memo cold, then warm: the same answer
        got = [bool(d) for d in eng._prefilter(evs)]
        assert [g or not w for g, w in zip(got, want, strict=True)] == [True] * len(evs)
    assert {d.event_ids[0] for d in eng.process(evs)} == {evs[0].id, evs[1].id, evs[3].id}
    flag = engine_from(rule("  sel:\n    Initiated: 'true'\n  condition: sel"))
    for v, hit in [(True, True), (1, False), (True, True), (1, False), ("TRUE", True)]:
        assert bool(flag._prefilter([make_event({"Initiated": v})])[0]) is hit, v  # 1 == True


def test_a_regex_rule_is_gated_by_its_literals(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(rule("  sel:\n    CommandLine|re: '\\w+`(?:\\w+|-|.)`[\\w+|\\s]'\n"
                           "  condition: sel"))
    assert eng.rules[0].atoms == (("CommandLine", "contains", "`"),)
    hit = make_event({"CommandLine": "IN`V`o`Ke-eXp`ResSIOn (Ne`W-ob`ject Net.WebClient)"})
    plain = make_event({"CommandLine": "powershell -File backup.ps1"})
    assert [len(c) for c in eng._prefilter([plain, hit])] == [0, 1]
    assert [d.event_ids[0] for d in eng.process([plain, hit])] == [hit.id]


def test_an_index_survives_deepcopy_and_pickle() -> None:
    import copy
    import pickle

    fi = _index()
    fi.cache["usr bin"]  # a memo entry made by a miss (the memo asks its field)
    for twin in (copy.deepcopy(fi), pickle.loads(pickle.dumps(fi))):  # our own bytes
        assert twin.ac is not None and twin.ac is not fi.ac
        for v in _values(random.Random(5), 300):
            _check(_bits(twin.hits(v.lower())), v)
        # the copy's memo asks the copy: its misses are counted there, not on the original
        assert twin.cache.fi is twin and twin.cache["usr bin"] == fi.cache["usr bin"]
        misses = (fi.misses, twin.misses)
        for v in _values(random.Random(6), 50):
            _check(_bits(twin.cache[v]), v)
        assert fi.misses == misses[0] and twin.misses > misses[1]


def test_a_field_whose_values_rarely_repeat_is_searched_by_batch_from_early_on(
    engine_from: Callable[..., Engine],
) -> None:
    eng = engine_from(rule("  sel:\n    - 'segfault at'\n  img:\n    Image|endswith: '/nc'\n"
                           "  condition: sel or img", logsource="product: linux"))
    evs = [make_event({"message": f"app[{i}]: {'segfault at 0' if i % 97 == 0 else 'ok'}",
                       "Image": f"/usr/bin/{'nc' if i % 89 == 0 else 'ls'}"})
           for i in range(1500)]
    want = {ev.id for i, ev in enumerate(evs) if i % 97 == 0 or i % 89 == 0}
    got = set()
    for k in range(0, len(evs), 100):
        got |= {d.event_ids[0] for d in eng.process(evs[k:k + 100])}
    assert got == want  # the same answers on either path
    memo = {f: fi.memo for f, fi in eng.bucket(evs[0].logsource).fields}
    assert memo == {"\x00keywords": False, "Image": True}, memo  # after ~1,024 messages, not 4,096


def test_an_empty_batch_has_no_candidates(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(rule("  sel:\n    Image|endswith: '/nc'\n  condition: sel"))
    bucket = eng.bucket(make_event({"Image": "/usr/bin/nc"}).logsource)
    assert bucket.fields and bucket.candidates([]) == []
    assert eng.process([]) == []
