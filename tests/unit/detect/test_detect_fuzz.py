"""The engine never raises on odd field values: any JSON-like value under any field name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

ROOT = Path(__file__).resolve().parents[3]
DIRS = [ROOT / "soc_rules"] + [
    d for d in (ROOT.parent / "shared" / "sigmahq" / "rules" / "linux",) if d.is_dir()
]
ENGINE_RULES = load_rules(DIRS)
ENGINE = Engine(ENGINE_RULES)  # shared: buckets are built once; state only grows windows
NAMES = sorted({f for r in ENGINE_RULES.rules for f in r.fields} | {"message", "host.name"})
LOGSOURCES = sorted({(r.product, r.service, r.category) for r in ENGINE_RULES.rules})

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["10.20.3.4", "::1", "/usr/bin/id", "2026-11-20T03:00:00Z"]),
)
value = st.one_of(
    scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=5), scalar, max_size=2)
)


@settings(max_examples=150, deadline=None)
@given(
    ls=st.sampled_from(LOGSOURCES),
    fields=st.dictionaries(st.sampled_from(NAMES), value, max_size=8),
    raw=st.text(max_size=60),
)
def test_engine_survives_any_values(
    ls: tuple[str, str, str], fields: dict[str, object], raw: str
) -> None:
    eng = ENGINE
    ev = Event(
        id="x",
        timestamp=datetime(2026, 11, 20, tzinfo=UTC),
        source="fuzz",
        logsource=LogSource(*ls),
        fields=fields,
        raw=raw,
    )
    for d in eng.process([ev, ev]):
        assert d.rule_id and d.event_ids
