"""Linux audit records: parse `type=X msg=audit(ts:serial): k=v` lines, join them by event id."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_HEAD = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>\w+) "
    r"msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<serial>\d+)\):\s?"
)
_KV = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
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


@dataclass(slots=True)
class AuditEvent:
    """All records of one audit event id, in arrival order."""

    serial: str
    timestamp: datetime
    node: str
    records: list[AuditRecord] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)


def is_audit_record(text: str) -> bool:
    """True when the text starts with an audit record header."""
    return _HEAD.match(text) is not None


def _decode(key: str, value: str, execve: bool) -> str:
    if value[:1] in ('"', "'"):
        return value[1:-1] if len(value) > 1 else ""
    hexable = (execve and re.fullmatch(r"a\d+", key)) or key in _HEX_FIELDS
    if hexable and _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", "replace").replace("\x00", " ").strip()
    return value


def parse_record(text: str) -> AuditRecord | None:
    """Parse one audit record (raw, or ENRICHED with names after \\x1d); None if not one."""
    m = _HEAD.match(text)
    if not m:
        return None
    body, _, enriched = text[m.end() :].partition("\x1d")
    execve = m["type"] == "EXECVE"
    fields: dict[str, str] = {}
    for k, v in _KV.findall(body):
        if k == "msg" and v[:1] == "'":  # USER_* records nest their fields in msg='...'
            for k2, v2 in _KV.findall(v[1:-1]):
                fields.setdefault(k2, _decode(k2, v2, False))
            continue
        fields.setdefault(k, _decode(k, v, execve))
    for k, v in _KV.findall(enriched):
        fields[k] = _decode(k, v, False)
    ts = datetime.fromtimestamp(int(m["sec"]) + int(m["ms"]) / 1000, UTC)
    return AuditRecord(
        m["type"], f"{m['sec']}.{m['ms']}:{m['serial']}", ts, fields, m["node"] or ""
    )


class AuditAssembler:
    """Join records of one audit event id; an event completes on EOE, on a new id, or on flush."""

    def __init__(self) -> None:
        self._pending: OrderedDict[str, AuditEvent] = OrderedDict()

    @property
    def pending(self) -> bool:
        """Records are held back waiting for the rest of their event."""
        return bool(self._pending)

    @property
    def pending_serials(self) -> tuple[str, ...]:
        """Event ids still being assembled."""
        return tuple(self._pending)

    def feed(self, rec: AuditRecord, raw: str) -> list[AuditEvent]:
        """Add a record; return events now complete."""
        done: list[AuditEvent] = []
        key = f"{rec.node}/{rec.serial}"
        for k in [k for k in self._pending if k != key]:
            done.append(self._pending.pop(k))
        if rec.type == "EOE":
            if key in self._pending:
                done.append(self._pending.pop(key))
            return done
        ev = self._pending.get(key)
        if ev is None:
            ev = self._pending[key] = AuditEvent(rec.serial, rec.timestamp, rec.node)
        ev.records.append(rec)
        ev.raw.append(raw)
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
            execve = {
                k: v
                for k, v in r.fields.items()
                if k == "argc" or re.fullmatch(r"a\d+(\[\d+\])?", k)
            }
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
