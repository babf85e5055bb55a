"""The trap OID map (monitoring/snmp/traps.yml): what each notification OID means."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dcops.errors import ConfigError

SEVERITIES = frozenset({"info", "warning", "critical"})


@dataclass(frozen=True, slots=True)
class TrapType:
    """Meaning of one notification OID."""

    oid: str
    name: str
    action: str
    severity: str = "info"
    link: str = ""  # "up" / "down" for link-state traps (flapping suppression)
    description: str = ""


UNKNOWN = TrapType("", "unknownTrap", "snmp-trap", "info")


def load_trap_map(path: str | Path) -> dict[str, TrapType]:
    """Load the map, checking every entry (numeric OID, known severity, link up/down)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read trap OID map: {exc}", file=str(p)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {exc}", file=str(p),
                          line=mark.line + 1 if mark else None) from exc
    raw = data.get("traps")
    if not isinstance(raw, dict):
        raise ConfigError("expected a top-level 'traps' mapping", file=str(p), key="traps")
    out: dict[str, TrapType] = {}
    for oid, body in raw.items():
        key = f"traps.{oid}"
        o = str(oid).strip(".")
        if not all(part.isdigit() for part in o.split(".")):
            raise ConfigError(f"OID {oid!r} must be numeric", file=str(p), key=key)
        if not isinstance(body, dict) or "name" not in body:
            raise ConfigError("each trap needs at least 'name'", file=str(p), key=key)
        sev = str(body.get("severity", "info"))
        if sev not in SEVERITIES:
            raise ConfigError(f"severity {sev!r} unknown (expected info, warning or critical)",
                              file=str(p), key=key)
        link = str(body.get("link", ""))
        if link not in ("", "up", "down"):
            raise ConfigError(f"link {link!r} must be 'up' or 'down'", file=str(p), key=key)
        out[o] = TrapType(o, str(body["name"]), str(body.get("action", body["name"])), sev, link,
                          str(body.get("description", "")))
    return out
