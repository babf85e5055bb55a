"""The event bus beyond one machine: NATS JetStream (same `Bus` contract as the SQLite spool)."""

from __future__ import annotations

from dcops.pipeline.jetstream.bus import BusError, BusUnavailableError, JetStreamBus
from dcops.pipeline.jetstream.config import JetStreamConfig

__all__ = ["BusError", "BusUnavailableError", "JetStreamBus", "JetStreamConfig"]
