"""State changes seen by the poller (device unreachable, interface down) as events; a JSONL sink."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcops.collectors.snmp.metrics import _label, _num
from dcops.collectors.snmp.poller import DeviceSample
from dcops.errors import CollectorError
from dcops.model.event import Event, LogSource, json_safe

POLLER = LogSource(product="snmp", service="poller", category="network")
IF_TABLE = "ifTable"
ADMIN, OPER = "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
IFNAME, IFDESCR = "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.2.2.1.2"
OPER_NAMES = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
              7: "lowerLayerDown"}


def _event(ts: datetime, action: str, s: DeviceSample, outcome: str, message: str,
           extra: dict[str, Any]) -> Event:
    d = s.device
    fields: dict[str, Any] = {
        "event.kind": "event", "event.category": "network", "event.type": "change",
        "event.action": action, "event.outcome": outcome, "event.module": "snmp",
        "observer.name": d.name, "observer.ip": d.address, "observer.type": d.device_class,
        "observer.vendor": d.vendor, "host.name": d.name, "site.name": d.site,
        "message": message, **extra}
    key = extra.get("interface.name", "")
    return Event(id=Event.make_id("snmp_poll", d.name, action, key, ts.isoformat()),
                 timestamp=ts, source="snmp_poll", logsource=POLLER, fields=fields,
                 raw=json.dumps({"device": d.name, "action": action, **extra}, sort_keys=True))


class StateTracker:
    """Remembers each device's reachability and each interface's state; emits changes."""

    def __init__(self) -> None:
        self.reachable: dict[str, bool] = {}
        self.oper: dict[tuple[str, str], int] = {}

    def observe(self, samples: Sequence[DeviceSample]) -> list[Event]:
        """Events for what changed since the previous cycle (first cycle: assume all was up)."""
        out: list[Event] = []
        for s in samples:
            ts = datetime.fromtimestamp(s.started, UTC)
            name = s.device.name
            was = self.reachable.get(name, True)
            self.reachable[name] = s.ok
            if was and not s.ok:
                out.append(_event(ts, "device-unreachable", s, "failure",
                                  f"{name} unreachable over SNMP: {s.error}",
                                  {"error.type": s.error_kind, "error.message": s.error}))
            elif not was and s.ok:
                out.append(_event(ts, "device-reachable", s, "success",
                                  f"{name} answers SNMP again", {}))
            if s.ok:
                out += self._interfaces(ts, s)
        return out

    def _interfaces(self, ts: datetime, s: DeviceSample) -> list[Event]:
        out = []
        for idx, row in s.tables.get(IF_TABLE, {}).items():
            oper = int(_num(row.get(OPER)) or 0)
            admin = int(_num(row.get(ADMIN)) or 0)
            key = (s.device.name, idx)
            prev = self.oper.get(key, 1)
            self.oper[key] = oper
            if admin != 1 or oper == prev:
                continue
            ifname = _label(row.get(IFNAME)) or _label(row.get(IFDESCR)) or idx
            extra = {"interface.name": ifname, "interface.id": idx,
                     "interface.oper_status": OPER_NAMES.get(oper, str(oper)),
                     "interface.previous_oper_status": OPER_NAMES.get(prev, str(prev))}
            if oper == 1:
                out.append(_event(ts, "interface-up", s, "success",
                                  f"{s.device.name} {ifname} is up again", extra))
            elif prev == 1:
                out.append(_event(ts, "interface-down", s, "failure",
                                  f"{s.device.name} {ifname} is administratively up but "
                                  f"operationally {OPER_NAMES.get(oper, oper)}", extra))
        return out


def event_to_json(e: Event) -> dict[str, Any]:
    """A JSON-ready dict of an event."""
    return {"id": e.id, "timestamp": e.timestamp.isoformat(), "source": e.source,
            "logsource": {"product": e.logsource.product, "service": e.logsource.service,
                          "category": e.logsource.category},
            "fields": e.fields, "raw": e.raw, "parsed": e.parsed}


def _line(e: Event) -> str:
    """One JSON line; values JSON cannot hold as they are are kept in their json_safe form."""
    doc = event_to_json(e)
    try:
        return json.dumps(doc, ensure_ascii=False, default=str) + "\n"
    except (TypeError, ValueError):
        return json.dumps(json_safe(doc), ensure_ascii=False, default=str) + "\n"


class JsonlSink:
    """An EventSink appending one JSON object per line, fsynced before publish returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise CollectorError(f"{self.path}: cannot write events: {exc}") from exc

    def publish(self, events: Sequence[Event]) -> None:
        """Append and fsync."""
        if not events:
            return
        data = "".join(_line(e) for e in events)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
