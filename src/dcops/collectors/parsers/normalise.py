"""Turn raw lines from any transport into Events: syslog framing, program parsers, auditd."""

from __future__ import annotations

from collections import Counter, OrderedDict
from datetime import UTC, datetime
from typing import Any

from dcops.collectors.parsers.auditd import AuditAssembler, AuditEvent, event_fields, parse_record
from dcops.collectors.parsers.cisco import find_cisco, parse_cisco
from dcops.collectors.parsers.linux import PROGRAMS, parse_netfilter
from dcops.collectors.parsers.syslog_frame import SyslogMessage, find_bsd_time, parse_syslog
from dcops.model.event import Event, LogSource

_PARENT_CACHE = 50_000


class Normaliser:
    """Stateful normaliser for one input stream (a file, or everything a syslog server receives).

    Holds auditd records until their event is complete and remembers pid -> executable so a
    process_creation event can name its ParentImage.
    `stats` counts parsed, header-only and raw lines.
    """

    def __init__(self, source: str, default_host: str = "", default_program: str = "") -> None:
        self.source = source
        self.default_host = default_host
        # Lines with no syslog header (e.g. `sshd -e` on stderr) are read as from this program.
        self.default_program = default_program
        self.stats: Counter[str] = Counter()
        self._audit = AuditAssembler()
        self._audit_ctx: dict[str, tuple[str, datetime]] = {}
        self._images: OrderedDict[str, str] = OrderedDict()

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
    ) -> list[Event]:
        """Normalise one line; `id_parts` identify the accepted input (peer, receive time)."""
        received = received or datetime.now(UTC)
        text = raw.rstrip("\r\n")
        rec = parse_record(text)
        msg: SyslogMessage | None = None
        if rec is None:
            msg = parse_syslog(text, now=received)
            rec = parse_record(msg.message) if msg.format != "none" else None
        if rec is not None:
            host = rec.node or (msg.hostname if msg else "") or self.default_host or peer
            self._audit_ctx.setdefault(f"{rec.node}/{rec.serial}", (host, received))
            done = self._audit.feed(rec, text)
            return [e for ev in done for e in self._audit_events(ev)]
        assert msg is not None
        return [self._syslog_event(msg, text, id_parts, received, peer)]

    def flush(self) -> list[Event]:
        """Complete held-back audit events."""
        return [e for ev in self._audit.flush() for e in self._audit_events(ev)]

    def _syslog_event(
        self, msg: SyslogMessage, raw: str, id_parts: tuple[Any, ...], received: datetime, peer: str
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
            logsource, parsed = LogSource(), False
        self.stats[kind] += 1
        return Event(
            id=Event.make_id(self.source, host, raw, *id_parts),
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
                return LogSource("linux", service), True, "parsed"
            return LogSource("linux", service), True, "header_only"
        if prog == "kernel" or "IN=" in msg.message:
            extra = parse_netfilter(msg.message)
            if extra is not None:
                fields |= extra
                return LogSource("linux", "", "firewall"), True, "parsed"
        if msg.format == "none":
            return LogSource(), False, "raw"
        return LogSource("linux", "syslog"), True, "header_only"

    def _audit_events(self, ev: AuditEvent) -> list[Event]:
        key = f"{ev.node}/{ev.serial}"
        host, _received = self._audit_ctx.pop(key, (self.default_host, ev.timestamp))
        fields = event_fields(ev)
        if host:
            fields["host.name"] = host
        fields["message"] = "\n".join(ev.raw)
        # Record types are part of the id: an event split by an idle flush keeps both halves.
        eid = Event.make_id("auditd", host, ev.serial, *(r.type for r in ev.records))
        out = [
            Event(
                id=eid,
                timestamp=ev.timestamp,
                source=self.source,
                logsource=LogSource("linux", "auditd"),
                fields=fields,
                raw="\n".join(ev.raw),
            )
        ]
        self.stats["parsed"] += 1
        if "process.args" in fields:
            out.append(self._process_creation(eid, ev, fields))
        return out

    def _process_creation(self, eid: str, ev: AuditEvent, f: dict[str, Any]) -> Event:
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
            self._images[f"{host}/{f['pid']}"] = image
            if len(self._images) > _PARENT_CACHE:
                self._images.popitem(last=False)
        return Event(
            id=Event.make_id(eid, "process_creation"),
            timestamp=ev.timestamp,
            source=self.source,
            logsource=LogSource("linux", "", "process_creation"),
            fields=pc,
            raw="\n".join(ev.raw),
        )
