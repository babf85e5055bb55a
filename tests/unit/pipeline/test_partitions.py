"""Partitioning the JetStream subjects by host, and which correlations that keeps exact."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.detect.engine import Engine
from dcops.errors import ConfigError
from dcops.lab.workload import events
from dcops.model.event import Event, LogSource
from dcops.pipeline.jetstream import JetStreamConfig
from dcops.pipeline.jetstream.subjects import (
    event_subject,
    partition_filter,
    partition_of,
    read_by_partitions,
)
from dcops.pipeline.workers import cross_host, host_local, without_correlations

REPO = Path(__file__).resolve().parents[3]
CROSS_HOST_RULE = """\
title: SSH Password Spray Across Hosts
id: 5b0f3d7e-8a55-4a3c-9d55-3f1f0d2a7c11
status: experimental
description: One source failing SSH logins on many hosts (groups across hosts).
author: dcops SOC
date: 2026-12-03
correlation:
    type: event_count
    rules:
        - dcops_sshd_auth_failure
    group-by:
        - source.ip
    timespan: 5m
    condition:
        gte: 30
level: high
"""


def nats_match(pattern: str, subject: str) -> bool:
    """NATS subject matching (`*` one token, `>` the rest), to check the filters."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def _ev(fields: dict[str, object], eid: str = "e1", source: str = "syslog_tcp") -> Event:
    return Event(eid, datetime.now(UTC), source, LogSource(), fields)


def test_partitions_option_is_parsed_and_bounded() -> None:
    assert JetStreamConfig.from_url("nats://h:1").partitions == 1
    assert JetStreamConfig.from_url("nats://h:1?partitions=16").partitions == 16
    for bad in ("0", "257", "-1"):
        with pytest.raises(ConfigError, match=re.escape(f"partitions={bad}: expected 1 to 256")):
            JetStreamConfig.from_url(f"nats://h:1?partitions={bad}")
    with pytest.raises(ConfigError, match="partitions='two': expected an integer"):
        JetStreamConfig.from_url("nats://h:1?partitions=two")


def test_one_partition_keeps_the_four_token_subject() -> None:
    e = _ev({"site.name": "dc1", "host.name": "web-01"})
    assert event_subject("dcops", e) == event_subject("dcops", e, 1)
    assert event_subject("dcops", e) == "dcops.events.dc1.syslog_tcp"
    assert partition_filter("dcops", 0, 1) == "dcops.events.*.*"
    assert nats_match("dcops.events.>", "dcops.events.dc1.syslog_tcp")


def test_events_of_one_host_share_a_partition_whatever_the_site_and_source() -> None:
    n = 4
    a = _ev({"site.name": "dc1", "host.name": "web-01"}, "a", "syslog_tcp")
    b = _ev({"site.name": "dc2", "host.name": "web-01"}, "b", "wazuh")
    k = partition_of(a, n)
    assert partition_of(b, n) == k
    assert event_subject("dcops", a, n) == f"dcops.events.dc1.syslog_tcp.p{k}"
    assert event_subject("dcops", b, n) == f"dcops.events.dc2.wazuh.p{k}"
    # the host is event_host: host.name first, then host.hostname, observer.hostname, agent.name
    c = _ev({"host.hostname": "web-01"}, "c")
    assert partition_of(c, n) == k
    # no host field: placed by the event id (stable)
    nohost = [_ev({}, f"id-{i}") for i in range(200)]
    parts = Counter(partition_of(e, n) for e in nohost)
    assert set(parts) == set(range(n))
    assert [partition_of(e, n) for e in nohost] == [partition_of(e, n) for e in nohost]


def test_each_subject_is_read_by_exactly_one_partition_and_all_by_the_stream() -> None:
    for n in (1, 2, 3, 4):
        seen: Counter[int] = Counter()
        for e in events(0, 2000):
            subject = event_subject("dcops", e, n)
            assert nats_match("dcops.events.>", subject)  # the stream holds it
            readers = [p for p in range(n) if nats_match(partition_filter("dcops", p, n), subject)]
            assert readers == [partition_of(e, n)], (subject, readers)
            assert read_by_partitions("dcops", subject, n)
            seen[readers[0]] += 1
        assert set(seen) == set(range(n))  # the workload's 10 hosts reach every partition


@pytest.mark.parametrize(("subject", "partitions", "read"), [
    ("dcops.events.dc1.syslog.p0", 2, True),
    ("dcops.events.dc1.syslog.p1", 2, True),
    ("dcops.events.dc1.syslog.p2", 2, False),  # a collector with partitions=3 or more
    ("dcops.events.dc1.syslog.p01", 2, False),
    ("dcops.events.dc1.syslog", 2, False),  # published before partitioning
    ("dcops.events.dc1.syslog.p0", 1, False),  # partitioned, read by no 1-partition group
    ("dcops.events.dc1.syslog", 1, True),
    ("other.events.dc1.syslog", 1, False),
])
def test_stray_subjects_are_recognised(subject: str, partitions: int, read: bool) -> None:
    assert read_by_partitions("dcops", subject, partitions) is read


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_dirs([REPO / "soc_rules"])


def test_every_house_correlation_groups_by_host(engine: Engine) -> None:
    assert len(engine.correlations) >= 7
    assert cross_host(engine) == []
    corr = {st.corr.title: st.corr for st in engine.correlations}
    # Windows rules group by Computer (the host: the parser sets host.name from it)
    assert host_local(next(c for t, c in corr.items() if "RDP" in t))
    # an alias that means a non-host field for each base rule does not count as a host
    login = next(c for t, c in corr.items() if "Newly Created" in t)
    assert "account" in login.aliases and host_local(login)
    assert not host_local(dataclasses.replace(login, group_by=("account",)))


def test_a_correlation_across_hosts_is_named_and_can_be_left_out(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "soc_rules", rules)
    (rules / "linux" / "sshd" / "spray.yml").write_text(CROSS_HOST_RULE)
    eng = Engine.from_dirs([rules])
    wide = cross_host(eng)
    assert [c.title for c in wide] == ["SSH Password Spray Across Hosts"]
    kept = without_correlations(eng, {c.id for c in wide})
    assert len(kept.correlations) == len(eng.correlations) - 1
    assert cross_host(kept) == []
    # what is kept still raises the house correlations exactly as the full house engine does
    evs = list(events(0, 3000))
    house = Engine.from_dirs([REPO / "soc_rules"]).process(evs)
    assert {d.id for d in kept.process(evs)} == {d.id for d in house}
    assert any(len(d.event_ids) > 1 for d in house)  # correlations among them
