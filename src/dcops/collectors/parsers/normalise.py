"""Turn raw lines from any transport into Events: syslog framing, program parsers, auditd."""

from __future__ import annotations

from collections import Counter, OrderedDict
from datetime import UTC, datetime
from typing import Any

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES, ORIGINAL_SIZE_FIELD, TRUNCATED_FIELD
from dcops.collectors.parsers.auditd import (
    MAX_CHARS,
    MAX_FIELDS,
    MAX_RECORDS,
    AuditAssembler,
    AuditEvent,
    event_fields,
    parse_record,
)
from dcops.collectors.parsers.cisco import find_cisco, parse_cisco
from dcops.collectors.parsers.linux import PROGRAMS, parse_netfilter
from dcops.collectors.parsers.syslog_frame import SyslogMessage, find_bsd_time, parse_syslog
from dcops.model.event import Event, LogSource

# The logsources of syslog lines, built once (a frozen dataclass costs ~0.5 us to build)
_LINUX = {s: LogSource("linux", s) for s in {svc for _, svc in PROGRAMS.values()} | {"syslog"}}
_FIREWALL = LogSource("linux", "", "firewall")
_NO_LOGSOURCE = LogSource()
_AUDIT = ("type=", "node=")  # what an audit record starts with (auditd._HEAD)
_PARENT_CACHE = 50_000  # pid -> executable entries remembered for ParentImage
_PARENT_CHARS = 8 << 20  # and the characters they may hold (hostile paths are long)
_PARENT_ITEM = 4096  # longer paths or keys are not remembered (PATH_MAX)


def cut(text: str, limit: int) -> tuple[str, int]:
    """`text` cut to at most `limit` characters (0: no limit) and, if it was cut, its size in
    UTF-8 bytes before (else 0)."""
    if not limit or len(text) <= limit:
        return text, 0
    return text[:limit], len(text.encode("utf-8", "surrogatepass"))


class _ParentImages:
    """pid -> executable, bounded in entries and characters; the oldest go first, counted."""

    def __init__(self, stats: Counter[str], entries: int, chars: int) -> None:
        self._map: OrderedDict[str, str] = OrderedDict()
        self._stats, self._entries, self._chars, self._held = stats, entries, chars, 0

    def get(self, key: str) -> str | None:
        return self._map.get(key)

    def put(self, key: str, image: str) -> None:
        if len(key) > _PARENT_ITEM or len(image) > _PARENT_ITEM:
            self._stats["parent_images_refused"] += 1
            return
        old = self._map.pop(key, None)
        if old is not None:
            self._held -= len(key) + len(old)
        self._map[key] = image
        self._held += len(key) + len(image)
        while len(self._map) > self._entries or self._held > self._chars:
            k, v = self._map.popitem(last=False)
            self._held -= len(k) + len(v)
            self._stats["parent_images_evicted"] += 1

    def __len__(self) -> int:
        return len(self._map)


class Normaliser:
    """Stateful normaliser for one input stream (a file, or everything a syslog server receives).

    Holds auditd records until their event is complete and remembers pid -> executable so a
    process_creation event can name its ParentImage.
    `stats` counts parsed, header-only and raw lines, and what the bounds below cost.

    Bounded whatever the input (issue 13): every parser runs in time linear in the line; a line
    longer than `max_message_chars` characters is cut before it is parsed (the event gets
    `log.truncated` and `log.original_size`, its UTF-8 size; `stats["truncated"]`). The limit is
    in characters so that a transport that already cut the bytes at the same limit never has its
    text cut again (decoding never yields more characters than bytes). Audit records keep at
    most `max_audit_fields` fields (`stats["audit_fields_dropped"]`), one audit event is held at
    a time and one longer than `max_audit_records` records or MAX_CHARS characters is emitted in
    parts (`stats["audit_split"]`); the ParentImage memory is bounded in entries and characters
    (`stats["parent_images_evicted"]`).

    A message is stored once: `raw` is the line as received (after the cut) and
    `fields["message"]` the MSG part parsed out of it. When the two would be the same text (a
    line without a syslog header) and for joined auditd events (`raw` holds their records),
    `message` is left out: readers take `message`, else `raw`, as detection's keyword search and
    the triage console already do.
    """

    def __init__(
        self,
        source: str,
        default_host: str = "",
        default_program: str = "",
        *,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_audit_records: int = MAX_RECORDS,
        max_audit_fields: int = MAX_FIELDS,
        max_parent_images: int = _PARENT_CACHE,
    ) -> None:
        self.source = source
        self.default_host = default_host
        # Lines with no syslog header (e.g. `sshd -e` on stderr) are read as from this program.
        self.default_program = default_program
        self.max_message_chars = max_message_chars
        self.max_audit_fields = max_audit_fields
        self.stats: Counter[str] = Counter()
        self._audit = AuditAssembler(max_audit_records, MAX_CHARS)
        self._images = _ParentImages(self.stats, max_parent_images, _PARENT_CHARS)

    @property
    def pending(self) -> bool:
        """Audit records are held back waiting for the rest of their event."""
        return self._audit.pending

    @property
    def pending_serials(self) -> tuple[str, ...]:
        """Audit event ids still being assembled."""
        return self._audit.pending_serials

    def line(
        self,
        raw: str,
        *,
        id_parts: tuple[Any, ...],
        received: datetime | None = None,
        peer: str = "",
        id_prefix: str = "",
    ) -> list[Event]:
        """Normalise one line; `id_parts` identify the accepted input (peer, receive time).

        `id_prefix`: `Event.order_prefix` of the receive time when that time is among
        `id_parts`; the syslog event's id then sorts by it (`Event.make_id`). Not for inputs
        that are read again later under the same id (a file's offsets).
        """
        received = received or datetime.now(UTC)
        raw, cut_bytes = cut(raw, self.max_message_chars)
        if cut_bytes:
            self.stats["truncated"] += 1
        text = raw.rstrip("\r\n")
        rec = parse_record(text, self.max_audit_fields) if text.startswith(_AUDIT) else None
        msg: SyslogMessage | None = None
        if rec is None:
            msg = parse_syslog(text, now=received)
            if msg.format != "none":
                rec = (parse_record(msg.message, self.max_audit_fields)
                       if msg.message.startswith(_AUDIT) else None)
        if rec is not None:
            host = rec.node or (msg.hostname if msg else "") or self.default_host or peer
            self.stats["audit_fields_dropped"] += rec.dropped_fields
            splits = self._audit.splits
            done = self._audit.feed(rec, text, host, cut_bytes)
            self.stats["audit_split"] += self._audit.splits - splits
            return [e for ev in done for e in self._audit_events(ev)]
        assert msg is not None
        event = self._syslog_event(msg, text, id_parts, received, peer, id_prefix)
        if cut_bytes:
            event.fields |= {TRUNCATED_FIELD: True, ORIGINAL_SIZE_FIELD: cut_bytes}
        return [event]

    def flush(self) -> list[Event]:
        """Complete held-back audit events."""
        return [e for ev in self._audit.flush() for e in self._audit_events(ev)]

    def _syslog_event(
        self, msg: SyslogMessage, raw: str, id_parts: tuple[Any, ...], received: datetime,
        peer: str, id_prefix: str = "",
    ) -> Event:
        fields: dict[str, Any] = {"message": msg.message}
        if peer:
            fields["log.source.address"] = peer
        if msg.app_name:
            fields["process.name"] = msg.app_name
        if msg.procid.isdigit():
            fields["process.pid"] = int(msg.procid)
        if msg.facility is not None and msg.severity is not None:
            fields |= {
                "log.syslog.facility.code": msg.facility,
                "log.syslog.severity.code": msg.severity,
            }
        if msg.msgid:
            fields["log.syslog.msgid"] = msg.msgid
        if msg.structured_data:
            fields["log.syslog.structured_data"] = msg.structured_data
        logsource, parsed, kind = self._program(msg, fields)
        host = msg.hostname or self.default_host or peer
        if host:
            fields["host.name"] = host
        if msg.format == "none" and kind == "raw":
            logsource, parsed = _NO_LOGSOURCE, False
        if fields.get("message") == raw:  # stored once: `raw` holds it
            del fields["message"]
        self.stats[kind] += 1
        return Event(
            id=Event.make_id(self.source, host, raw, *id_parts, prefix=id_prefix),
            timestamp=msg.timestamp or received,
            source=self.source,
            logsource=logsource,
            fields=fields,
            raw=raw,
            parsed=parsed,
        )

    def _program(self, msg: SyslogMessage, fields: dict[str, Any]) -> tuple[LogSource, bool, str]:
        """Run the program parser; returns (logsource, parsed, stats key)."""
        cm = find_cisco(msg.message)
        if cm is not None:
            ls, cisco_fields = parse_cisco(cm)
            fields |= cisco_fields
            if msg.timestamp is None or msg.app_name.isdigit():
                head = msg.message[: cm.start()] or msg.app_name
                ts, host = find_bsd_time(head, msg.timestamp or datetime.now(UTC))
                msg.timestamp = msg.timestamp or ts
                if host and not msg.hostname:
                    msg.hostname = host
                fields.pop("process.name", None)
            return ls, True, "parsed"
        if msg.format == "none" and not msg.app_name and self.default_program:
            msg.app_name = self.default_program
            msg.format = "program"
        prog = msg.app_name.rsplit("/", 1)[-1]
        if prog in PROGRAMS:
            parser, service = PROGRAMS[prog]
            extra = parser(msg.message)
            if extra is not None:
                fields |= extra
                return _LINUX[service], True, "parsed"
            return _LINUX[service], True, "header_only"
        if prog == "kernel" or "IN=" in msg.message:
            extra = parse_netfilter(msg.message)
            if extra is not None:
                fields |= extra
                return _FIREWALL, True, "parsed"
        if msg.format == "none":
            return _NO_LOGSOURCE, False, "raw"
        return _LINUX["syslog"], True, "header_only"

    def _audit_events(self, ev: AuditEvent) -> list[Event]:
        host = ev.host or self.default_host
        fields = event_fields(ev)
        if host:
            fields["host.name"] = host
        if ev.cut_bytes:
            fields |= {TRUNCATED_FIELD: True, ORIGINAL_SIZE_FIELD: ev.cut_bytes}
        raw = "\n".join(ev.raw)  # the records, stored once (no `message` copy)
        # Record types are part of the id: an event split by an idle flush keeps both halves;
        # so is the part number of an event emitted in parts (none for a whole event).
        parts = (*(r.type for r in ev.records), *((f"part{ev.part}",) if ev.part else ()))
        eid = Event.make_id("auditd", host, ev.serial, *parts)
        out = [
            Event(
                id=eid,
                timestamp=ev.timestamp,
                source=self.source,
                logsource=LogSource("linux", "auditd"),
                fields=fields,
                raw=raw,
            )
        ]
        self.stats["parsed"] += 1
        if "process.args" in fields:
            out.append(self._process_creation(eid, ev, fields, raw))
        return out

    def _process_creation(self, eid: str, ev: AuditEvent, f: dict[str, Any], raw: str) -> Event:
        """The same execve as Sigma's process_creation category (Image, CommandLine...)."""
        image = str(f.get("exe", ""))
        pc: dict[str, Any] = {k: v for k, v in f.items() if "." in k}
        pc |= {
            "Image": image,
            "CommandLine": f.get("process.command_line", ""),
            "type": "EXECVE",
            "User": f.get("UID") or f.get("uid", ""),
            "ProcessId": f.get("pid", ""),
            "ParentProcessId": f.get("ppid", ""),
            "LogonId": f.get("ses", ""),
        }
        if "cwd" in f:
            pc["CurrentDirectory"] = f["cwd"]
        host = str(f.get("host.name", ""))
        parent = self._images.get(f"{host}/{f.get('ppid', '')}")
        if parent:
            pc["ParentImage"] = parent
        if f.get("pid"):
            self._images.put(f"{host}/{f['pid']}", image)
        return Event(
            id=Event.make_id(eid, "process_creation"),
            timestamp=ev.timestamp,
            source=self.source,
            logsource=LogSource("linux", "", "process_creation"),
            fields=pc,
            raw=raw,
        )
