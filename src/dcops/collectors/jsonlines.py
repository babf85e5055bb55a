"""What every JSON-lines reader shares (Wazuh alerts.json, Windows event exports).

A line is cut at `max_message_chars` (marked `log.truncated`/`log.original_size` and counted in
`stats["truncated"]`), decoded once, and handed to the reader's `from_doc` when it is a JSON
object. A line that is not (broken, cut, nested deeper than the parser's recursion limit) or that
`from_doc` does not recognise becomes a raw event counted in `stats["malformed"]` or
`stats["unknown_shape"]`: never dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES, ORIGINAL_SIZE_FIELD, TRUNCATED_FIELD
from dcops.collectors.parsers.normalise import cut
from dcops.model.event import Event, LogSource


class JsonLineNormaliser:
    """The Normaliser protocol (logfile.py) for one JSON object a line; nothing is held back."""

    def __init__(self, source: str, default_host: str = "", *,
                 max_message_chars: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.source = source
        self.default_host = default_host
        self.max_message_chars = max_message_chars
        self.stats: Counter[str] = Counter()
        self.pending = False
        self.pending_serials: tuple[str, ...] = ()

    def flush(self) -> list[Event]:
        """Nothing is held back."""
        return []

    def from_doc(self, doc: dict[str, Any], raw: str, id_parts: tuple[Any, ...],
                 received: datetime, peer: str) -> Event | None:
        """The event of one decoded object, or None when it is not of a shape this reader knows
        (it is then kept raw)."""
        raise NotImplementedError

    def line(
        self,
        raw: str,
        *,
        id_parts: tuple[Any, ...],
        received: datetime | None = None,
        peer: str = "",
    ) -> list[Event]:
        """One line: its event, or a raw event for anything else."""
        received = received or datetime.now(UTC)
        raw, cut_bytes = cut(raw, self.max_message_chars)
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than ~1000
            doc = None
        event = self.from_doc(doc, raw, id_parts, received, peer) if isinstance(doc, dict) else None
        if event is None:
            self.stats["raw"] += 1
            self.stats["malformed" if not isinstance(doc, dict) else "unknown_shape"] += 1
            event = Event(Event.make_id(self.source, raw, *id_parts), received, self.source,
                          LogSource(), {}, raw, parsed=False)  # the text is `raw`, stored once
        if cut_bytes:
            self.stats["truncated"] += 1
            event.fields |= {TRUNCATED_FIELD: True, ORIGINAL_SIZE_FIELD: cut_bytes}
        return [event]
