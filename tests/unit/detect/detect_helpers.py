"""Helpers for detection unit tests: inline Sigma YAML, events."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

_ids = itertools.count()
PROC = LogSource("linux", "", "process_creation")
T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def make_event(
    fields: dict[str, Any],
    ls: LogSource = PROC,
    *,
    seconds: float = 0,
    raw: str = "",
) -> Event:
    """An event at T0 + seconds."""
    n = next(_ids)
    return Event(
        id=f"ev{n:06d}",
        timestamp=T0 + timedelta(seconds=seconds),
        source="test",
        logsource=ls,
        fields=fields,
        raw=raw,
    )


@pytest.fixture
def engine_from(tmp_path: Path) -> Callable[..., Engine]:
    """Write Sigma YAML documents to a rule file and build an engine from it."""

    def build(*docs: str) -> Engine:
        d = tmp_path / f"rules{next(_ids)}"
        d.mkdir()
        (d / "rule.yml").write_text("\n---\n".join(docs), encoding="utf-8")
        rs = load_rules([d])
        assert not rs.rejected, rs.rejected
        return Engine(rs)

    return build


def rule(detection: str, *, logsource: str = "product: linux\n  category: process_creation",
         rid: str = "11111111-1111-4111-8111-111111111111", name: str = "") -> str:
    """A minimal Sigma rule around a detection block (indented two spaces)."""
    name_line = f"name: {name}\n" if name else ""
    return (
        f"title: Test rule\nid: {rid}\n{name_line}status: test\n"
        f"logsource:\n  {logsource}\ndetection:\n{detection}\nlevel: high\n"
    )
