"""Snapshot and restore of the Sigma engine's correlation windows, for exact runner restarts.

Until dcops.detect.Engine offers `snapshot()`/`restore()` itself, this adapter saves what its
correlation states hold (per correlation id: group key -> window of (time, event id, rule
position, value)). If the engine's internals differ from what it expects, `snapshot` refuses and
the runner falls back to re-feeding the replay window.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import orjson

from dcops.model.event import Detection, Event


class SnapshotUnsupportedError(Exception):
    """The engine's correlation state is not in the expected shape."""


def supports_snapshot(engine: Any) -> bool:
    """True when the engine's correlation states look like dcops.detect's."""
    sts = getattr(engine, "correlations", None)
    return isinstance(sts, list) and all(
        isinstance(getattr(st, "groups", None), OrderedDict) and hasattr(st, "corr") for st in sts
    )


class SnapshottingEngine:
    """Wraps an engine; `process` passes through, `snapshot`/`restore` carry correlation state."""

    def __init__(self, engine: Any) -> None:
        if not supports_snapshot(engine):
            raise SnapshotUnsupportedError(type(engine).__name__)
        self.engine = engine

    def process(self, events: Sequence[Event]) -> list[Detection]:
        """Match events (delegated)."""
        out: list[Detection] = self.engine.process(events)
        return out

    def snapshot(self) -> bytes:
        """Every correlation window, keyed by correlation id."""
        doc = {
            st.corr.id: [[list(k), [list(e) for e in win]] for k, win in st.groups.items()]
            for st in self.engine.correlations
        }
        return orjson.dumps(doc)

    def restore(self, state: bytes) -> None:
        """Replace the correlation windows with a snapshot (unknown correlations are ignored)."""
        doc = orjson.loads(state)
        for st in self.engine.correlations:
            groups: OrderedDict[tuple[str, ...], deque[tuple[float, str, int, str | None]]] = (
                OrderedDict()
            )
            for key, win in doc.get(st.corr.id, []):
                groups[tuple(key)] = deque((float(t), str(i), int(p), v) for t, i, p, v in win)
            st.groups = groups
