"""Linux audit records: parse `type=X msg=audit(ts:serial): k=v` lines, join them by event id.

Bounded against hostile input: the expressions are linear in the record (possessive runs, a
key is tried from the start of its run only), a record keeps at most `max_fields` fields, and
the assembler holds one event at a time (a new event id completes the others) of at most
`max_records` records and `max_chars` characters; an event that grows past them is emitted in
parts (counted, nothing dropped).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_HEAD = re.compile(
    r"(?:node=(?P<node>\S++) )?type=(?P<type>\w++) "
    r"msg=audit\((?P<sec>\d++)\.(?P<ms>\d++):(?P<serial>\d++)\):\s?"
)
# `([\w-]+)=(...)` found by findall restarted inside every run of key characters (quadratic in
# a long word); the lookbehind tries a run from its start only, which finds the same pairs.
_KV = re.compile(r"""(?<![\w-])([\w-]++)=("[^"]*+"|'[^']*+'|\S*+)""")
_HEX = re.compile(r"[0-9A-F]++")
_ARG = re.compile(r"a\d++")
_ARG_ANY = re.compile(r"a\d++(?:\[\d++\])?")
MAX_FIELDS = 1024  # per record (an EXECVE record of the kernel holds at most ~7.5 kB of args)
MAX_RECORDS = 128  # per event before it is emitted in parts
MAX_CHARS = 1 << 20  # of raw record text per event before it is emitted in parts
# Fields whose unquoted value is hex-encoded text when it holds spaces or control characters.
_HEX_FIELDS = frozenset(
    {"exe", "comm", "name", "cwd", "proctitle", "cmd", "data", "path", "acct", "old", "new"}
)
# A few x86_64 syscall numbers for logs without ENRICHED interpretation.
_SYSCALLS_X86_64 = {
    "0": "read",
    "1": "write",
    "2": "open",
    "42": "connect",
    "43": "accept",
    "49": "bind",
    "56": "clone",
    "57": "fork",
    "59": "execve",
    "62": "kill",
    "82": "rename",
    "83": "mkdir",
    "84": "rmdir",
    "87": "unlink",
    "90": "chmod",
    "92": "chown",
    "101": "ptrace",
    "105": "setuid",
    "165": "mount",
    "175": "init_module",
    "257": "openat",
    "263": "unlinkat",
    "264": "renameat",
    "268": "fchmodat",
    "313": "finit_module",
    "319": "memfd_create",
    "321": "bpf",
    "322": "execveat",
}


@dataclass(slots=True)
class AuditRecord:
    """One audit record line."""

    type: str
    serial: str  # "<sec>.<ms>:<serial>", the audit event id
    timestamp: datetime
    fields: dict[str, str]
    node: str = ""
    dropped_fields: int = 0  # fields beyond max_fields, not kept (they stay in the raw text)


@dataclass(slots=True)
class AuditEvent:
    """All records of one audit event id, in arrival order."""

    serial: str
    timestamp: datetime
    node: str
    records: list[AuditRecord] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    host: str = ""  # where the first record came from (syslog host, audit node or peer)
    part: int = 0  # 1, 2... when an oversized event was emitted in parts
    chars: int = 0  # characters of raw text held
    cut_bytes: int = 0  # original size of records that were cut at max_message_bytes


def is_audit_record(text: str) -> bool:
    """True when the text starts with an audit record header."""
    return _HEAD.match(text) is not None


def _decode(key: str, value: str, execve: bool) -> str:
    if value[:1] in ('"', "'"):
        return value[1:-1] if len(value) > 1 else ""
    hexable = (execve and _ARG.fullmatch(key)) or key in _HEX_FIELDS
    if hexable and len(value) % 2 == 0 and _HEX.fullmatch(value):
        return bytes.fromhex(value).decode("utf-8", "replace").replace("\x00", " ").strip()
    return value


def parse_record(text: str, max_fields: int = MAX_FIELDS) -> AuditRecord | None:
    """Parse one audit record (raw, or ENRICHED with names after \\x1d); None if not one.

    Keeps the first `max_fields` distinct fields; the others are counted in `dropped_fields`.
    """
    m = _HEAD.match(text)
    if not m:
        return None
    body, _, enriched = text[m.end() :].partition("\x1d")
    execve = m["type"] == "EXECVE"
    fields: dict[str, str] = {}
    dropped = 0

    def add(k: str, v: str, hexargs: bool, override: bool = False) -> None:
        nonlocal dropped
        if k in fields and not override:
            return
        if k not in fields and len(fields) >= max_fields:
            dropped += 1
            return
        fields[k] = _decode(k, v, hexargs)

    for k, v in _KV.findall(body):
        if k == "msg" and v[:1] == "'":  # USER_* records nest their fields in msg='...'
            for k2, v2 in _KV.findall(v[1:-1]):
                add(k2, v2, False)
            continue
        add(k, v, execve)
    for k, v in _KV.findall(enriched):
        add(k, v, False, override=True)
    try:
        ts = datetime.fromtimestamp(int(m["sec"]) + int(m["ms"]) / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # a time no clock has (2^64 s): not a record
        return None  # the line is kept as it came, as any unreadable line is
    return AuditRecord(
        m["type"], f"{m['sec']}.{m['ms']}:{m['serial']}", ts, fields, m["node"] or "", dropped
    )


class AuditAssembler:
    """Join records of one audit event id; an event completes on EOE, on a new id, or on flush.

    At most one event is pending at a time: the kernel writes an event's records together, so a
    record of another id completes the pending one (interleaving nodes just split events). An
    event longer than `max_records` records or `max_chars` characters is emitted as it stands
    and the rest of its records form the next part (`splits` counts them).
    """

    def __init__(self, max_records: int = MAX_RECORDS, max_chars: int = MAX_CHARS) -> None:
        self._pending: OrderedDict[str, AuditEvent] = OrderedDict()
        self.max_records = max_records
        self.max_chars = max_chars
        self.splits = 0

    @property
    def pending(self) -> bool:
        """Records are held back waiting for the rest of their event."""
        return bool(self._pending)

    @property
    def pending_serials(self) -> tuple[str, ...]:
        """Event ids still being assembled."""
        return tuple(self._pending)

    def feed(
        self, rec: AuditRecord, raw: str, host: str = "", cut_bytes: int = 0
    ) -> list[AuditEvent]:
        """Add a record (from `host`; `cut_bytes`: its size before it was cut, if it was);
        return events now complete."""
        done: list[AuditEvent] = []
        key = f"{rec.node}/{rec.serial}"
        for k in [k for k in self._pending if k != key]:
            done.append(self._pending.pop(k))
        if rec.type == "EOE":
            if key in self._pending:
                done.append(self._pending.pop(key))
            return done
        ev = self._pending.get(key)
        part = 0
        if ev is not None and (
            len(ev.records) >= self.max_records or ev.chars + len(raw) > self.max_chars
        ):
            done.append(self._pending.pop(key))
            self.splits += 1
            part, ev = (ev.part or 1) + 1, None
        if ev is None:
            ev = self._pending[key] = AuditEvent(
                rec.serial, rec.timestamp, rec.node, host=host, part=part
            )
        ev.records.append(rec)
        ev.raw.append(raw)
        ev.chars += len(raw)
        ev.cut_bytes += cut_bytes
        return done

    def flush(self) -> list[AuditEvent]:
        """Complete every pending event (end of a read batch, or idle timeout)."""
        done = list(self._pending.values())
        self._pending.clear()
        return done


def event_fields(ev: AuditEvent) -> dict[str, Any]:
    """Flatten an audit event to Sigma auditd names (type, exe, a0.., name) and ECS names."""
    f: dict[str, Any] = {}
    types: list[str] = []
    names: list[str] = []
    nametypes: list[str] = []
    execve: dict[str, str] = {}
    for r in ev.records:
        types.append(r.type)
        if r.type == "PATH":
            if "name" in r.fields:
                names.append(r.fields["name"])
            if "nametype" in r.fields:
                nametypes.append(r.fields["nametype"])
            continue
        if r.type == "EXECVE":
            execve = {k: v for k, v in r.fields.items() if k == "argc" or _ARG_ANY.fullmatch(k)}
            continue
        for k, v in r.fields.items():
            f.setdefault(k, v)
    f.update(execve)
    f["type"] = types[0] if len(types) == 1 else types
    if names:
        f["name"] = names[0] if len(names) == 1 else names
    if nametypes:
        f["nametype"] = nametypes[0] if len(nametypes) == 1 else nametypes
    if "SYSCALL" not in f and "syscall" in f:
        f["SYSCALL"] = _SYSCALLS_X86_64.get(f["syscall"], f["syscall"])
    if f.get("key") == "(null)":
        del f["key"]
    _ecs(f, types, execve)
    return f


def _ecs(f: dict[str, Any], types: list[str], execve: dict[str, str]) -> None:
    """Add ECS names beside the audit names."""
    f["event.category"] = "process" if "EXECVE" in types else "host"
    primary = types[0]
    f["event.action"] = (
        str(f.get("SYSCALL", primary)).lower() if primary == "SYSCALL" else primary.lower()
    )
    res = f.get("success") or f.get("res")
    if res:
        f["event.outcome"] = "success" if res in ("yes", "success", "1") else "failure"
    for src, dst in (
        ("exe", "process.executable"),
        ("comm", "process.name"),
        ("cwd", "process.working_directory"),
        ("uid", "user.id"),
        ("auid", "user.audit.id"),
        ("addr", "source.ip"),
        ("key", "tags"),
    ):
        v = f.get(src)
        if v not in (None, "", "?", "(none)", "(null)"):
            f[dst] = v
    for src, dst in (("pid", "process.pid"), ("ppid", "process.parent.pid")):
        if str(f.get(src, "")).isdigit():
            f[dst] = int(f[src])
    user = f.get("UID") or f.get("acct") or f.get("AUID")
    if user and user not in ("unset", "?"):
        f["user.name"] = user
    if execve:
        args = [execve[f"a{i}"] for i in range(len(execve)) if f"a{i}" in execve]
        f["process.args"] = args
        f["process.command_line"] = " ".join(args)
