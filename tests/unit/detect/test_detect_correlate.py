"""Correlations: event_count, value_count, temporal, temporal_ordered; windows, groups, bounds."""

from __future__ import annotations

from collections.abc import Callable

from detect_helpers import make_event, rule

from dcops.detect import Engine
from dcops.model.event import LogSource

SSHD = LogSource("linux", "sshd")
BASE_FAIL = rule(
    "  sel:\n    event.outcome: failure\n  condition: sel",
    logsource="product: linux\n  service: sshd",
    rid="22222222-2222-4222-8222-222222222222",
    name="fail",
)
BASE_OK = rule(
    "  sel:\n    event.outcome: success\n  condition: sel",
    logsource="product: linux\n  service: sshd",
    rid="33333333-3333-4333-8333-333333333333",
    name="ok",
)


def corr(body: str, rid: str = "44444444-4444-4444-8444-444444444444") -> str:
    return f"title: Corr\nid: {rid}\nstatus: test\ncorrelation:\n{body}\nlevel: high\n"


COUNT = corr(
    "  type: event_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 60s\n"
    "  condition:\n    gte: 3"
)


def fail(ip: str, t: float, user: str = "u") -> object:
    return make_event({"event.outcome": "failure", "source.ip": ip, "user.name": user}, SSHD,
                      seconds=t)


def test_event_count_fires_once_per_window(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(BASE_FAIL, COUNT)
    evs = [fail("1.1.1.1", t) for t in (0, 10, 20, 30)]
    out = eng.process(evs)  # type: ignore[arg-type]
    assert [d.rule_title for d in out] == ["Corr"]  # base rule output is suppressed
    (d,) = out
    assert d.key == "source.ip=1.1.1.1"
    assert d.event_ids == tuple(sorted(e.id for e in evs[:3]))  # type: ignore[attr-defined]


def test_event_count_respects_timespan_and_groups(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(BASE_FAIL, COUNT)
    spread = [fail("1.1.1.1", t) for t in (0, 40, 80, 120)]
    mixed = [fail(f"2.2.2.{i}", 200 + i) for i in range(5)]
    assert eng.process(spread + mixed) == []  # type: ignore[operator]


def test_replay_yields_same_detection_id(engine_from: Callable[..., Engine]) -> None:
    evs = [fail("1.1.1.1", t) for t in (0, 1, 2)]
    a = engine_from(BASE_FAIL, COUNT).process(evs)  # type: ignore[arg-type]
    b = engine_from(BASE_FAIL, COUNT).process(evs)  # type: ignore[arg-type]
    assert [d.id for d in a] == [d.id for d in b] and len(a) == 1


def test_value_count(engine_from: Callable[..., Engine]) -> None:
    vc = corr(
        "  type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 5m\n"
        "  condition:\n    gte: 3\n    field: user.name"
    )
    eng = engine_from(BASE_FAIL, vc)
    same_user = [fail("1.1.1.1", t, "root") for t in range(5)]
    assert eng.process(same_user) == []  # type: ignore[arg-type]
    spray = [fail("1.1.1.1", 10 + t, f"user{t}") for t in range(3)]
    (d,) = eng.process(spray)  # type: ignore[arg-type]
    assert d.fields["distinct_values"] == ["root", "user0", "user1"]


def test_temporal_ordered_needs_order(engine_from: Callable[..., Engine]) -> None:
    tc = corr(
        "  type: temporal_ordered\n  rules: [fail, ok]\n  group-by: [source.ip]\n  timespan: 5m"
    )
    ok = make_event({"event.outcome": "success", "source.ip": "9.9.9.9"}, SSHD, seconds=100)
    eng = engine_from(BASE_FAIL, BASE_OK, tc)
    assert eng.process([ok]) == []
    eng = engine_from(BASE_FAIL, BASE_OK, tc)
    (d,) = eng.process([fail("9.9.9.9", 50), ok])  # type: ignore[list-item]
    assert len(d.event_ids) == 2


def test_temporal_any_order_with_alias(engine_from: Callable[..., Engine]) -> None:
    tc = corr(
        "  type: temporal\n  rules: [fail, ok]\n  group-by: [who]\n  timespan: 5m\n"
        "  aliases:\n    who:\n      fail: user.name\n      ok: client.user"
    )
    eng = engine_from(BASE_FAIL, BASE_OK, tc)
    ok = make_event({"event.outcome": "success", "client.user": "ann"}, SSHD, seconds=1)
    (d,) = eng.process([ok, fail("1.1.1.1", 2, "ann")])  # type: ignore[list-item]
    assert d.key == "who=ann"


def test_state_is_bounded(engine_from: Callable[..., Engine], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dcops.detect import load_rules

    (tmp_path / "r.yml").write_text(BASE_FAIL + "\n---\n" + COUNT)
    eng = Engine(load_rules([tmp_path]), max_groups=10)
    eng.process([fail(f"10.0.{i // 250}.{i % 250}", i) for i in range(500)])  # type: ignore[misc]
    assert len(eng.correlations[0].groups) <= 10


def test_unsupported_correlation_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dcops.detect import load_rules

    lt = corr("  type: event_count\n  rules: [fail]\n  timespan: 1m\n  condition:\n    lt: 3")
    (tmp_path / "r.yml").write_text(BASE_FAIL + "\n---\n" + lt)
    rs = load_rules([tmp_path])
    assert not rs.correlations
    assert any("lt" in r.reason for r in rs.rejected)


def test_batching_does_not_change_detections(engine_from: Callable[..., Engine]) -> None:
    evs = [fail(f"1.1.1.{i % 3}", i * 7) for i in range(40)]
    whole = [d.id for d in engine_from(BASE_FAIL, COUNT).process(evs)]  # type: ignore[arg-type]
    eng = engine_from(BASE_FAIL, COUNT)
    pieces = [d.id for k in range(0, 40, 3) for d in eng.process(evs[k : k + 3])]  # type: ignore[arg-type]
    assert whole == pieces and len(whole) >= 3
