"""Value modifiers: each one matching and not matching, case rules, lists, types."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest
from detect_helpers import make_event, rule

from dcops.detect import Engine
from dcops.detect.context import to_text
from dcops.model.event import LogSource


def _hits(engine_from: Callable[..., Engine], det: str, fields: dict[str, object]) -> bool:
    eng = engine_from(rule(det))
    return bool(eng.process([make_event(fields)]))


CASES = [
    # (detection, fields, expected)
    ("  sel:\n    Image: /usr/bin/id\n  condition: sel", {"Image": "/USR/BIN/ID"}, True),
    ("  sel:\n    Image: /usr/bin/id\n  condition: sel", {"Image": "/usr/bin/idx"}, False),
    ("  sel:\n    Image|cased: /usr/bin/id\n  condition: sel", {"Image": "/USR/BIN/ID"}, False),
    ("  sel:\n    Image|cased: /usr/bin/id\n  condition: sel", {"Image": "/usr/bin/id"}, True),
    ("  sel:\n    Image|endswith: /curl\n  condition: sel", {"Image": "/usr/bin/curl"}, True),
    ("  sel:\n    Image|endswith: /curl\n  condition: sel", {"Image": "/usr/bin/curly"}, False),
    ("  sel:\n    Image|startswith: /tmp/\n  condition: sel", {"Image": "/tmp/x"}, True),
    ("  sel:\n    Image|startswith: /tmp/\n  condition: sel", {"Image": "/var/tmp/x"}, False),
    ("  sel:\n    CommandLine|contains: ' -e '\n  condition: sel",
     {"CommandLine": "nc -e sh"}, True),
    ("  sel:\n    CommandLine|contains|all: [a1, b2]\n  condition: sel",
     {"CommandLine": "x A1 y"}, False),
    ("  sel:\n    CommandLine|contains|all: [a1, b2]\n  condition: sel",
     {"CommandLine": "b2 x A1 y"}, True),
    ("  sel:\n    CommandLine: 'wget*http?//*'\n  condition: sel",
     {"CommandLine": "wget http://x"}, True),
    ("  sel:\n    CommandLine: 'wget*http?//*'\n  condition: sel",
     {"CommandLine": "curl http://x"}, False),
    ("  sel:\n    CommandLine|re: '^nc\\s+-[lv]+'\n  condition: sel",
     {"CommandLine": "nc -lv 4444"}, True),
    ("  sel:\n    CommandLine|re: '^NC'\n  condition: sel", {"CommandLine": "nc -l"}, False),
    ("  sel:\n    CommandLine|re|i: '^NC'\n  condition: sel", {"CommandLine": "nc -l"}, True),
    ("  sel:\n    CommandLine|re|s: 'a.b'\n  condition: sel", {"CommandLine": "a\nb"}, True),
    ("  sel:\n    CommandLine|re: 'a.b'\n  condition: sel", {"CommandLine": "a\nb"}, False),
    ("  sel:\n    CommandLine|re|m: '^b$'\n  condition: sel", {"CommandLine": "a\nb"}, True),
    ("  sel:\n    DestinationIp|cidr: 10.20.0.0/16\n  condition: sel",
     {"DestinationIp": "10.20.3.4"}, True),
    ("  sel:\n    DestinationIp|cidr: 10.20.0.0/16\n  condition: sel",
     {"DestinationIp": "10.21.3.4"}, False),
    ("  sel:\n    DestinationIp|cidr: 'fd00::/8'\n  condition: sel",
     {"DestinationIp": "fd12::1"}, True),
    ("  sel:\n    CommandLine|windash|contains: ' -exec '\n  condition: sel",
     {"CommandLine": "find / /exec x"}, True),
    ("  sel:\n    CommandLine|base64|contains: 'evil'\n  condition: sel",
     {"CommandLine": "echo " + base64.b64encode(b"evil").decode()}, True),
    ("  sel:\n    CommandLine|base64offset|contains: 'bash -i'\n  condition: sel",
     {"CommandLine": "echo " + base64.b64encode(b"xxbash -i >&").decode()}, True),
    ("  sel:\n    CommandLine|base64offset|contains: 'bash -i'\n  condition: sel",
     {"CommandLine": "echo " + base64.b64encode(b"sh -c id").decode()}, False),
    ("  sel:\n    ParentImage|exists: true\n  condition: sel", {"ParentImage": "/bin/sh"}, True),
    ("  sel:\n    ParentImage|exists: true\n  condition: sel", {"Image": "/bin/sh"}, False),
    ("  sel:\n    ParentImage|exists: false\n  condition: sel", {"Image": "/bin/sh"}, True),
    ("  sel:\n    ParentImage: null\n  condition: sel", {"Image": "/bin/sh"}, True),
    ("  sel:\n    ParentImage: null\n  condition: sel", {"ParentImage": "/bin/sh"}, False),
    ("  sel:\n    ParentImage: ''\n  condition: sel", {"ParentImage": ""}, True),
    ("  sel:\n    uid|gte: 1000\n  condition: sel", {"uid": "1001"}, True),
    ("  sel:\n    uid|gt: 1000\n  condition: sel", {"uid": 1000}, False),
    ("  sel:\n    uid|lt: 1000\n  condition: sel", {"uid": 0}, True),
    ("  sel:\n    uid|lte: 1000\n  condition: sel", {"uid": "abc"}, False),
    ("  sel:\n    uid: 0\n  condition: sel", {"uid": "0"}, True),
    ("  sel:\n    uid: 0\n  condition: sel", {"uid": 0}, True),
    ("  sel:\n    uid: 0\n  condition: sel", {"uid": 10}, False),
    ("  sel:\n    User|fieldref: TargetUser\n  condition: sel",
     {"User": "Bob", "TargetUser": "bob"}, True),
    ("  sel:\n    User|fieldref: TargetUser\n  condition: sel",
     {"User": "bob", "TargetUser": "alice"}, False),
    ("  sel:\n    User|fieldref|startswith: TargetUser\n  condition: sel",
     {"User": "bobby", "TargetUser": "bob"}, True),
    ("  sel:\n    name|contains: shadow\n  condition: sel",
     {"name": ["/etc/", "/etc/shadow"]}, True),
    ("  sel:\n    name|contains: gshadow\n  condition: sel",
     {"name": ["/etc/", "/etc/shadow"]}, False),
    ("  sel:\n    User|neq: root\n  condition: sel", {"User": "ROOT"}, False),
    ("  sel:\n    User|neq: root\n  condition: sel", {"User": "admin"}, True),
    ("  sel:\n    Image|utf16be|base64|contains: 'ab'\n  condition: sel",
     {"Image": "x" + base64.b64encode("ab".encode("utf-16be")).decode()}, True),
    ("  sel:\n    Image|utf16|base64|contains: 'ab'\n  condition: sel",
     {"Image": "x" + base64.b64encode("\ufeffab".encode("utf-16le")).decode()}, True),
    ("  sel:\n    Image|wide|base64offset|contains: 'ab'\n  condition: sel",
     {"Image": base64.b64encode("xab".encode("utf-16le")).decode()}, True),
]


@pytest.mark.parametrize(("det", "fields", "expected"), CASES)
def test_modifier(engine_from: Callable[..., Engine], det: str, fields: dict[str, object],
                  expected: bool) -> None:
    assert _hits(engine_from, det, fields) is expected


def test_keyword_searches_message_then_raw(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(rule("  keywords:\n    - 'segfault at'\n  condition: keywords",
                           logsource="product: linux"))
    ls = LogSource("linux", "syslog")
    assert eng.process([make_event({"message": "app[1]: SEGFAULT AT 0"}, ls)])
    assert eng.process([make_event({}, ls, raw="kernel: segfault at 0 ip")])
    assert not eng.process([make_event({"message": "all fine"}, ls, raw="segfault at")])


def test_logsource_must_match(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(rule("  sel:\n    Image|endswith: /id\n  condition: sel"))
    assert not eng.process([make_event({"Image": "/bin/id"}, LogSource("linux", "auditd"))])
    win = LogSource("windows", "", "process_creation")
    assert not eng.process([make_event({"Image": "/bin/id"}, win)])


def test_invented_logsources_share_buckets_and_stay_bounded(
    engine_from: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dcops.detect import engine as engine_mod

    monkeypatch.setattr(engine_mod, "_BUCKETS_MAX", 16)
    eng = engine_from(rule("  sel:\n    Image|endswith: /id\n  condition: sel"))
    hit = {"Image": "/bin/id"}
    for i in range(100):  # a sender inventing services: one bucket for all, caches bounded
        ls = LogSource("linux", f"svc{i}", "process_creation")
        assert len(eng.process([make_event(hit, ls)])) == 1
        assert not eng.process([make_event(hit, LogSource(f"p{i}", "", "process_creation"))])
    assert len(eng._buckets) <= 16 and len(eng._by_rules) == 2  # the rule, and none
    assert eng.bucket(LogSource("linux", "a", "process_creation")) is eng.bucket(
        LogSource("linux", "b", "process_creation"))


def _sigma_answer(kind: str, lit: str, v: object) -> bool:
    """What a case-insensitive Sigma test answers, written out: the value (each item of a list)
    as lowercase text against the literal."""
    if v is None:
        return False
    items = v if isinstance(v, list) else [v]
    texts = [to_text(x).lower() for x in items if x is not None]
    test = {"eq": str.__eq__, "prefix": str.startswith, "suffix": str.endswith,
            "contains": lambda x, lt: lt in x}[kind]
    return any(test(x, lit) for x in texts)


@pytest.mark.parametrize("kind", ["eq", "prefix", "suffix", "contains"])
def test_an_or_of_literals_on_one_field_answers_as_its_tests_would(kind: str) -> None:
    from dcops.detect.context import Ctx
    from dcops.detect.values import any_literal

    rng = random.Random(kind)
    alphabet = "ab/\\.eİ"
    for _ in range(300):
        lits = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3))).lower()
                for _ in range(rng.randint(1, 5))]
        merged = any_literal("f", kind, lits)
        for _ in range(20):
            word = "".join(rng.choice(alphabet.upper() + alphabet)
                           for _ in range(rng.randint(0, 6)))
            for v in (word, [word, "x"], [word, None], [], None, 7):
                c = Ctx()
                c.reset({"f": v} if v is not None else {}, "")
                want = any(_sigma_answer(kind, lit, v) for lit in lits)
                assert merged(c) is want, (kind, lits, v)


def test_a_rule_with_an_or_of_literals_keeps_its_answers(
    engine_from: Callable[..., Engine],
) -> None:
    eng = engine_from(rule(
        "  sel:\n    Image|endswith: ['/ps', '/top', '/PS']\n"
        "    CommandLine|contains: ['-e', 'aux']\n"
        "  other:\n    User: [root, Admin]\n  condition: sel or other"))
    cases = [({"Image": "/bin/ps", "CommandLine": "ps aux"}, True),
             ({"Image": "/usr/bin/TOP", "CommandLine": "top -E"}, True),
             ({"Image": "/usr/bin/top", "CommandLine": "top"}, False),
             ({"Image": ["/x", "/bin/ps"], "CommandLine": ["ps", "-e"]}, True),
             ({"User": "ADMIN"}, True), ({"User": ["x", "root"]}, True), ({"User": "rootx"}, False)]
    evs = [make_event(f) for f, _ in cases]
    got = {d.event_ids[0] for d in eng.process(evs)}
    assert [ev.id in got for ev in evs] == [hit for _, hit in cases]
