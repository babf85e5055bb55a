"""Choose the bus engine from configuration: a path (SQLite spool) or a nats:// URL (JetStream)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcops.errors import ConfigError
from dcops.pipeline.spool import SqliteSpool

if TYPE_CHECKING:
    from dcops.pipeline.jetstream import JetStreamBus

NATS_SCHEMES = ("nats://", "tls://")


def is_nats(target: str | Path) -> bool:
    """True when `target` names a NATS JetStream bus rather than a spool file."""
    return isinstance(target, str) and target.startswith(NATS_SCHEMES)


def open_bus(target: str | Path, **options: Any) -> SqliteSpool | JetStreamBus:
    """Open the bus `target` names.

    `/var/lib/dcops/spool.db`, `sqlite:///var/lib/dcops/spool.db` (or a Path): the SQLite spool
    (options: max_backlog, synchronous, poll). `nats://h1:4222,h2:4222?replicas=3` or `tls://...`:
    the JetStream bus (options: any JetStreamConfig field, overriding the URL's query).
    """
    if isinstance(target, Path):
        return SqliteSpool(target, **options)
    text = target.strip()
    if is_nats(text):
        from dcops.pipeline.jetstream import JetStreamBus

        return JetStreamBus(text, **options)
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ConfigError(f"bus: {target!r}: expected sqlite:///absolute/path.db")
        return SqliteSpool(path, **options)
    if "://" in text:
        raise ConfigError(f"bus: {target!r}: expected a spool path, sqlite:///path, nats:// "
                          "or tls:// URL")
    if not text:
        raise ConfigError("bus: empty target (expected a spool path or a nats:// URL)")
    return SqliteSpool(text, **options)
