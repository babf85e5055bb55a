"""Ports the project's own Ansible roles open on each host, read from the playbooks and the roles.

A role that opens sockets says so in `playbooks/roles/<role>/meta/ports.yml`; each entry is
templated the way the role's own tasks would see it (role defaults, then the host's inventory
variables, then role vars), so the allowed ports follow the variables the role really uses. Which
roles reach which host comes from `playbooks/site.yml`: its imported playbooks' plays, their
`hosts` patterns matched against the inventory's groups, and their `roles`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcops.errors import InventoryError
from dcops.inventory.ansible_io import RawInventory

EPHEMERAL = "ephemeral"  # a port the kernel picks (ip_local_port_range), bound by `process`


@dataclass(frozen=True, slots=True)
class RolePort:
    """One socket a role opens on a host, and where that was decided."""

    port: str  # tcp/9100, udp/161, or udp/ephemeral:snmpd
    role: str
    playbook: str  # playbooks/node_exporter.yml (servers:!backup_twins)
    variable: str  # the variable that sets it, with its value and where the value came from
    why: str
    peers: tuple[str, ...] | None = None  # `peers:` of the entry: the hosts that may connect

    def source(self) -> str:
        """One line for the finding: which role, which play, which variable."""
        return f"role {self.role} ({self.playbook}; {self.variable}): {self.why}"


def project_root(inventory: Path) -> Path | None:
    """The nearest directory above the inventory holding playbooks/site.yml (none: not known)."""
    for parent in inventory.resolve().parents:
        if (parent / "playbooks" / "site.yml").is_file():
            return parent
    return None


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"cannot read {path}: {exc}", file=str(path)) from exc


def plays(root: Path) -> list[tuple[str, str, list[str]]]:
    """(playbook file, hosts pattern, role names) of every play site.yml imports."""
    site = root / "playbooks" / "site.yml"
    out: list[tuple[str, str, list[str]]] = []
    for item in _load(site) or []:
        target = item.get("ansible.builtin.import_playbook") if isinstance(item, dict) else None
        if target:
            out.extend(_role_plays(root, site.parent / str(target)))
    return out


def every_play(root: Path) -> list[tuple[str, str, list[str]]]:
    """The plays of every playbook in playbooks/, site.yml's and those run beside it
    (event_bus.yml: its users need vaulted passwords), each once."""
    out: list[tuple[str, str, list[str]]] = []
    for book in sorted((root / "playbooks").glob("*.yml")):
        for one in _role_plays(root, book):
            if one not in out:
                out.append(one)
    return out


def _role_plays(root: Path, book: Path) -> list[tuple[str, str, list[str]]]:
    out: list[tuple[str, str, list[str]]] = []
    doc = _load(book)
    for play in doc if isinstance(doc, list) else []:
        if not isinstance(play, dict) or not play.get("roles"):
            continue
        roles = [str(r["role"] if isinstance(r, dict) else r) for r in play["roles"]]
        out.append((str(book.relative_to(root)), str(play.get("hosts", "")), roles))
    return out


def match(pattern: str, raw: RawInventory) -> set[str]:
    """Hosts of an Ansible host pattern (`a:b`, `a:!b`, `a:&b`, commas) in the inventory."""
    chosen: set[str] = set()
    for i, term in enumerate(t.strip() for t in re.split(r"[:,]", pattern) if t.strip()):
        op, name = (term[0], term[1:]) if term[0] in "!&" else ("", term)
        hosts = set(raw.hostvars) if name in ("all", "*") else set(raw.groups.get(name, ()))
        if name in raw.hostvars:
            hosts = {name}
        if op == "!":
            chosen -= hosts
        elif op == "&" and i:
            chosen &= hosts
        else:
            chosen |= hosts
    return chosen


def _net_snmp(address: str) -> str:
    """net-snmp agentAddress (`udp:10.0.0.1:161`, `tcp:161`, `161`, `udp6:[::1]:161`) -> udp/161."""
    parts = address.split(":")
    proto = parts[0].rstrip("6") if parts[0].rstrip("6") in ("udp", "tcp") else "udp"
    port = parts[-1] if parts[-1].isdigit() else "161"
    return f"{proto}/{port}"


class _Role:
    """A role's port declarations, defaults and vars."""

    def __init__(self, root: Path, name: str) -> None:
        base = root / "playbooks" / "roles" / name
        self.name = name
        self.file = base / "meta" / "ports.yml"
        self.rel = str(self.file.relative_to(root))
        self.defaults = _load(base / "defaults" / "main.yml") or {}
        vars_file = base / "vars" / "main.yml"
        self.vars = (_load(vars_file) or {}) if vars_file.is_file() else {}
        self.entries: list[dict[str, Any]] = []
        if self.file.is_file():
            doc = _load(self.file) or {}
            entries = doc.get("ports") if isinstance(doc, dict) else None
            if not isinstance(entries, list):
                raise InventoryError("expected a list under `ports:`", file=self.rel, key="ports")
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not {"protocol", "port", "variable",
                                                       "why"} <= set(entry):
                    raise InventoryError("each port needs protocol, port, variable and why",
                                         file=self.rel, key=f"ports[{i}]")
            self.entries = entries

    def ports(self, host: str, hostvars: dict[str, Any], playbook: str,
              raw: RawInventory) -> list[RolePort]:
        from ansible.errors import AnsibleError
        from ansible.template import Templar

        from dcops.inventory.ansible_io import _plugins_ready

        # `groups` and `hostvars` as a play sees them: defaults such as the Alertmanager pair's
        # (monitoring_server_alertmanager_cluster_enabled) read the inventory's groups
        variables = {**self.defaults, **hostvars, **self.vars, "inventory_hostname": host,
                     "groups": {g: list(hs) for g, hs in raw.groups.items()},
                     "hostvars": raw.hostvars}
        _plugins_ready()
        templar = Templar(loader=raw.loader, variables=variables)
        out = []
        for i, entry in enumerate(self.entries):
            try:
                enabled = templar.template(variables.get(f"{self.name}_enabled", True))
                wanted = templar.template(entry.get("when", True))
                value = templar.template(entry["port"])
                peers = templar.template(entry["peers"]) if "peers" in entry else None
            except AnsibleError as exc:
                raise InventoryError(f"host {host}: cannot template: {exc}", file=self.rel,
                                     key=f"ports[{i}]") from exc
            if not _true(enabled) or not _true(wanted):
                continue
            var = str(entry["variable"])
            where = ("inventory" if var in hostvars else
                     "role vars" if var in self.vars else "role default")
            shown = templar.template(variables.get(var, "")) if var in variables else "-"
            variable = f"{var}={shown} ({where})"
            if peers is not None and (not isinstance(peers, list) or not all(
                    isinstance(p, str) for p in peers)):
                raise InventoryError(f"host {host}: peers {peers!r} is not a list of inventory "
                                     "host names", file=self.rel, key=f"ports[{i}].peers")
            values = value if isinstance(value, list) else [value]
            for one in values:
                text = str(one)
                if entry.get("format") == "net-snmp":
                    port = _net_snmp(text)
                elif text == EPHEMERAL:
                    port = f"{entry['protocol']}/{EPHEMERAL}:{entry.get('process', '?')}"
                elif text.isdigit():
                    port = f"{entry['protocol']}/{text}"
                else:
                    raise InventoryError(f"host {host}: port {text!r} is not a number, "
                                         f"`ephemeral` or (format: net-snmp) an agent address",
                                         file=self.rel, key=f"ports[{i}].port")
                out.append(RolePort(port, self.name, playbook, variable, str(entry["why"]),
                                    None if peers is None else tuple(peers)))
        return out


def _true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none")
    return bool(value)


def role_ports(root: Path, raw: RawInventory,
               chosen: list[tuple[str, str, list[str]]] | None = None) -> dict[str, list[RolePort]]:
    """host -> the sockets site.yml's roles (or the `chosen` plays') open on it (declared in the
    roles' meta/ports.yml)."""
    roles: dict[str, _Role] = {}
    out: dict[str, list[RolePort]] = {h: [] for h in raw.hostvars}
    for book, pattern, names in plays(root) if chosen is None else chosen:
        hosts = match(pattern, raw)
        for name in names:
            role = roles.get(name) or roles.setdefault(name, _Role(root, name))
            if not role.entries:
                continue
            for host in sorted(hosts):
                out[host].extend(role.ports(host, raw.hostvars[host], f"{book}: {pattern}", raw))
    return out
