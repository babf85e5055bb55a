"""Condition expressions: and/or/not, 1 of / all of with patterns and them, precedence."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from detect_helpers import make_event, rule

from dcops.detect import Engine

DET = """  sel_a:
    Image|endswith: /a
  sel_b:
    CommandLine|contains: bee
  filter_x:
    User: root
  filter_y:
    User: daemon
  condition: {cond}"""


@pytest.mark.parametrize(
    ("cond", "fields", "expected"),
    [
        ("1 of sel_*", {"Image": "/x/a"}, True),
        ("all of sel_*", {"Image": "/x/a"}, False),
        ("all of sel_*", {"Image": "/x/a", "CommandLine": "a bee"}, True),
        ("1 of sel_* and not 1 of filter_*", {"Image": "/x/a", "User": "root"}, False),
        ("1 of sel_* and not 1 of filter_*", {"Image": "/x/a", "User": "bob"}, True),
        ("1 of sel_* and not 1 of filter_*", {"Image": "/x/a"}, True),
        ("sel_a or sel_b and filter_x", {"Image": "/x/a", "User": "bob"}, True),
        ("(sel_a or sel_b) and filter_x", {"Image": "/x/a", "User": "bob"}, False),
        ("not sel_a", {"Image": "/x/b"}, True),
        ("not sel_a", {"Image": "/x/a"}, False),
        ("all of them", {"Image": "/x/a", "CommandLine": "bee", "User": "root"}, False),
        ("1 of them", {"User": "daemon"}, True),
        ("sel_a and not (filter_x or filter_y)", {"Image": "/a", "User": "daemon"}, False),
    ],
)
def test_condition(engine_from: Callable[..., Engine], cond: str, fields: dict[str, str],
                   expected: bool) -> None:
    eng = engine_from(rule(DET.format(cond=cond)))
    assert bool(eng.process([make_event(fields)])) is expected


def test_detection_carries_rule_identity(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(rule("  sel:\n    Image|endswith: /a\n  condition: sel"))
    (d,) = eng.process([make_event({"Image": "/a", "host.name": "h1"})])
    assert d.rule_id == "11111111-1111-4111-8111-111111111111"
    assert d.severity == "high"
    assert d.host == "h1" and d.key == "h1"
    assert d.fields == {"Image": "/a"}


def test_unsupported_rule_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dcops.detect import load_rules

    bad = rule("  sel:\n    Image|expand: '%admins%'\n  condition: sel")
    (tmp_path / "bad.yml").write_text(bad)
    (tmp_path / "broken.yml").write_text("title: x\nlogsource: {product: linux}\n")
    rs = load_rules([tmp_path])
    assert not rs.rules
    reasons = " | ".join(r.reason for r in rs.rejected)
    assert "placeholder" in reasons
    assert len(rs.rejected) == 2


def test_engine_logs_rejected_rules(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    bad = rule("  sel:\n    Image|expand: '%admins%'\n  condition: sel")
    (tmp_path / "bad.yml").write_text(bad)
    with caplog.at_level("WARNING", logger="dcops.detect"):
        Engine.from_dirs([tmp_path])
    assert "placeholder" in caplog.text and "bad.yml" in caplog.text
