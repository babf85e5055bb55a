"""Hypothesis: the syslog, auditd and Wazuh alert parsers never raise, whatever the input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.collectors.parsers import Normaliser, parse_syslog
from dcops.collectors.parsers.auditd import parse_record
from dcops.collectors.wazuh import WazuhAlertNormaliser

_PREFIXES = st.sampled_from(
    [
        "",
        "<13>",
        "<13>1 ",
        "<999>",
        "<34>Oct 11 22:14:15 ",
        "<165>1 2003-10-11T22:14:15.003Z ",
        "Nov 22 04:44:50 host sshd[1]: ",
        "type=SYSCALL msg=audit(1.2:3): ",
        "type=EXECVE msg=audit(",
        "%ASA-4-106023: Deny ",
        "52: r1: *Nov 22 04:44:50: %SEC_LOGIN-4-LOGIN_FAILED: ",
        "kernel: IN=eth0 OUT= SRC=",
        "sudo: a : ",
        "2026-11-22T04:44:50Z h CRON[1]: (",
    ]
)


@settings(max_examples=400, deadline=None)
@given(_PREFIXES, st.text(max_size=300))
def test_syslog_parser_never_raises(prefix: str, text: str) -> None:
    m = parse_syslog(prefix + text)
    assert isinstance(m.message, str)


@settings(max_examples=400, deadline=None)
@given(_PREFIXES, st.text(max_size=300), st.text(max_size=50))
def test_normaliser_never_raises_and_never_drops(prefix: str, text: str, more: str) -> None:
    n = Normaliser("fuzz")
    out = n.line(prefix + text, id_parts=(1,)) + n.line(more, id_parts=(2,)) + n.flush()
    assert all(e.id for e in out)
    assert len(out) >= 1


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_auditd_record_parser_never_raises(text: str) -> None:
    parse_record("type=SYSCALL msg=audit(1700000000.123:1): " + text)
    parse_record(text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "agent", "rule", "data", "full_log", "timestamp", "x"]), _JSON
    ),
    st.integers(min_value=0, max_value=400),
)
def test_wazuh_reader_never_raises_and_keeps_every_line(doc: dict[str, object], cut: int) -> None:
    w = WazuhAlertNormaliser(max_message_chars=300)
    text = json.dumps(doc)
    for line in (text, text[:cut]):
        (e,) = w.line(line, id_parts=(1,))
        assert e.id and e.raw == line[:300]
        assert e.parsed == isinstance(_loads(line[:300]), dict)
    assert w.stats["parsed"] + w.stats["malformed"] == 2


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None
