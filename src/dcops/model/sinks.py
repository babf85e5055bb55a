"""Where collectors put events and detection puts detections (interfaces only, no I/O).

A source acknowledges its input only after `publish` returned: the sink has made the events durable
(at-least-once delivery). Event and detection ids are stable, so a redelivered item is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dcops.model.event import Detection, Event


class EventSink(Protocol):
    """Accepts normalised events durably (the pipeline's spool, or a test list)."""

    def publish(self, events: Sequence[Event]) -> None:
        """Store the events; return only once they are durable. Blocks under backpressure."""
        ...


class DetectionSink(Protocol):
    """Accepts detections (the alert store); the same detection id twice changes nothing."""

    def accept(self, detections: Sequence[Detection]) -> None:
        """Record the detections durably and idempotently."""
        ...


class DeadLetterSink(Protocol):
    """A sink that can set aside what it cannot store (poison), with its raw bytes and why."""

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Keep one item that could not be stored, durably; never raises for its content."""
        ...
