"""Windows event exports as JSON lines (winlogbeat/ECS, NXLog, Wazuh `win` objects) -> Events.

For a file that a forwarder writes (winlogbeat's file output, NXLog's om_file with to_json) and
that the log tailer reads: `FileTailer(path, spool, spool, normaliser=WindowsExportNormaliser())`.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES
from dcops.collectors.jsonlines import JsonLineNormaliser
from dcops.collectors.parsers.windows import windows_event
from dcops.model.event import Event

_ID_FIELDS = ("Computer", "Channel", "EventRecordID")  # what names one Windows event


class WindowsExportNormaliser(JsonLineNormaliser):
    """JSON lines of Windows events -> Events in SigmaHQ's Windows taxonomy.

    Bounded like the Wazuh reader: a line is cut at `max_message_chars` (marked and counted), a
    line that is not a JSON object or not a Windows event in a known shape is kept as a raw
    event (counted in `stats["malformed"]` or `stats["unknown_shape"]`), never dropped.
    """

    def __init__(
        self,
        source: str = "windows",
        default_host: str = "",
        *,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_BYTES,
        naive_tz: tzinfo = UTC,
    ) -> None:
        super().__init__(source, default_host, max_message_chars=max_message_chars)
        self.naive_tz = naive_tz  # for times without an offset (NXLog's EventTime is local)

    def from_doc(self, doc: dict[str, Any], raw: str, id_parts: tuple[Any, ...],
                 received: datetime, peer: str) -> Event | None:
        """One exported Windows event, or None for an object of no known export shape."""
        got = windows_event(doc)
        if got is None:
            return None
        ls, f = got
        f["host.name"] = f.get("host.name") or self.default_host or peer
        ids = tuple(f.get(k) for k in _ID_FIELDS)
        eid = (
            Event.make_id(self.source, *(str(x) for x in ids))
            if all(x not in (None, "") for x in ids)
            else Event.make_id(self.source, raw, *id_parts)
        )
        self.stats["parsed"] += 1
        return Event(eid, _when(doc, self.naive_tz) or received, self.source, ls, f, raw)


def _when(doc: dict[str, Any], naive_tz: tzinfo) -> datetime | None:
    """@timestamp (winlogbeat), Wazuh's systemTime or NXLog's EventTime (in `naive_tz` when it
    names no offset)."""
    win = (doc.get("data") or {}).get("win") if isinstance(doc.get("data"), dict) else None
    system = win.get("system") if isinstance(win, dict) else None
    for v in (
        doc.get("@timestamp"),
        doc.get("timestamp"),
        system.get("systemTime") if isinstance(system, dict) else None,
        doc.get("EventTime"),
    ):
        if isinstance(v, str):
            try:
                dt = datetime.fromisoformat(v)
            except ValueError:
                continue
            return dt if dt.tzinfo else dt.replace(tzinfo=naive_tz)
    return None
