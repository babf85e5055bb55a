"""A detection sink that keeps what it is given, in order (for tests of the runner and workers)."""

from __future__ import annotations

from collections.abc import Sequence

from dcops.model.event import Detection


class Collected:
    """Every detection accepted, duplicates included (the tests count them)."""

    def __init__(self) -> None:
        self.got: list[Detection] = []

    def accept(self, detections: Sequence[Detection]) -> None:
        self.got.extend(detections)
