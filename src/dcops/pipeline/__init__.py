"""The durable bus between collectors and detection: SQLite spool now, NATS JetStream later."""

from __future__ import annotations

from dcops.pipeline.bus import Bus, Checkpoints
from dcops.pipeline.factory import is_nats, open_bus
from dcops.pipeline.runner import Engine, Runner
from dcops.pipeline.spool import SpoolError, SqliteSpool

__all__ = [
    "Bus", "Checkpoints", "Engine", "Runner", "SpoolError", "SqliteSpool", "is_nats", "open_bus",
]
