"""What the site model implies but no inventory file declares: standby twins as hosts, the zone
networks of the host firewalls, the firewall rules between a cluster's peers, the node_exporter
targets.

Computed from the same address plan as the IaC (dcops.inventory.addressplan), so Ansible (through
the `dcops_derived` inventory plugin), the compliance audit and Pulumi see one set of twins and
subnets. Nothing here is written back to the inventory.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcops.model.site import SiteModel, Zone

from .addressplan import (
    TwinUnit,
    address_plan,
    dc_sites,
    host_address_problem,
    subnet_cidr,
    twin_units,
)

#: Groups every standby twin joins: its own, and the backup DC's servers (baseline, backup, SNMP).
TWIN_GROUPS = ("backup_twins", "backup_servers")
NODE_EXPORTER_PORT = 9100


@dataclass(frozen=True, slots=True)
class TwinHost:
    """The standby twin of a primary workload, as a host of the backup DC."""

    name: str  # the instance name the IaC gives it: <unit>-standby
    address: str | None  # planned address (None: no host of the unit has a planned address)
    site: str
    system: str
    zone: Zone
    unit: str
    twin_of: tuple[str, ...]  # the primary hosts it stands in for
    flavor: str
    volume_gb: int

    def hostvars(self) -> dict[str, Any]:
        """The host variables Ansible gets for the twin (the dcops_* names of declared hosts)."""
        out: dict[str, Any] = {"dcops_zone": self.zone.value, "dcops_role": "standby",
                               "dcops_twin_of": list(self.twin_of), "dcops_twin_unit": self.unit,
                               "dcops_twin_system": self.system, "dcops_flavor": self.flavor,
                               "dcops_volume_gb": self.volume_gb}
        if self.address is not None:
            out["ansible_host"] = self.address
        return out


@dataclass(frozen=True, slots=True)
class Derived:
    """What the inventory plugin adds: twins, the groups they join, the zone networks."""

    twins: tuple[TwinHost, ...]
    zone_networks: dict[str, list[str]]
    system_groups: dict[str, str]  # system -> the Ansible group of its hosts
    twin_groups: tuple[str, ...] = TWIN_GROUPS
    # host -> inbound rules between a cluster's members (dcops.inventory.peerrules)
    peer_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def derived_for(directory: Path) -> Derived:
    """Read the inventory directory (declared hosts only) and derive twins, zone networks and the
    peer rules of the roles playbooks/ applies (none without a playbooks/ above the directory)."""
    from .ansible_io import read
    from .build import build
    from .peerrules import peer_rules
    from .roleports import project_root

    raw = read(directory)
    model, _problems = build(raw)  # `dcops inventory check` reports the problems
    systems = raw.globals.get("dcops_systems")
    groups = {str(name): str(spec["group"]) for name, spec in systems.items()
              if isinstance(spec, dict) and spec.get("group")} if isinstance(systems, dict) else {}
    root = project_root(directory)
    peers = peer_rules(root, raw) if root is not None else {}
    return Derived(tuple(twin_hosts(model)), zone_networks(model), groups, peer_rules=peers)


def twin_name(unit: TwinUnit) -> str:
    """The instance name of a unit's standby twin (the IaC's name for it)."""
    return f"{unit.unit}-standby"


def twin_address(model: SiteModel, unit: TwinUnit, taken: set[str] | None = None) -> str | None:
    """The twin's planned address in the backup DC's subnet of its system and zone: the first
    primary host's host part (10.10.30.11 -> 10.11.30.11), or the next free host address above it
    when a backup-DC host (or an earlier twin, `taken`) holds that one. None when no host of the
    unit holds an address of its primary zone subnet (DHCP hosts)."""
    sites = dc_sites(model)
    primary, backup = sites.get("primary"), sites.get("backup")
    if primary is None or backup is None:
        return None
    taken = taken if taken is not None else {h.address for h in model.hosts.values()}
    source = ipaddress.ip_network(subnet_cidr(model, primary, unit.system, unit.zone))
    cidr = subnet_cidr(model, backup, unit.system, unit.zone)
    target = ipaddress.ip_network(cidr)
    for name in unit.hosts:
        host = model.hosts[name]
        if host.dhcp or not _is_ip(host.address):
            continue
        if ipaddress.ip_address(host.address) not in source:
            continue
        offset = int(ipaddress.ip_address(host.address)) - int(source.network_address)
        for candidate in range(int(target.network_address) + offset, int(target.broadcast_address)):
            address = str(ipaddress.ip_address(candidate))
            if address not in taken and host_address_problem(address, cidr) is None:
                return address
    return None


def twin_hosts(model: SiteModel) -> list[TwinHost]:
    """Every standby twin of the model as a backup-DC host (none without a backup DC, nor in the
    lab: `iac plan` plans the lab's twins, but no lab host plays them for Ansible or the audit)."""
    backup = dc_sites(model).get("backup")
    if backup is None or model.settings.environment == "lab":
        return []
    taken = {h.address for h in model.hosts.values()}
    twins = []
    for u in twin_units(model):
        address = twin_address(model, u, taken)
        if address is not None:
            taken.add(address)
        twins.append(TwinHost(twin_name(u), address, backup.name, u.system, u.zone, u.unit,
                              u.hosts, u.flavor, u.volume_gb))
    return twins


def zone_networks(model: SiteModel) -> dict[str, list[str]]:
    """Zone -> the CIDRs of that zone in both DCs, from the address plan.

    The lab is one flat network per host address (its hosts live on the lab bridge, not in the
    zone subnets `iac plan` carves from its cloud_prefix): every zone gets the /24s its hosts
    live on.
    """
    out: dict[str, list[str]] = {}
    if model.settings.environment == "lab":
        nets = sorted({str(ipaddress.ip_network(f"{h.address}/24", strict=False))
                       for h in model.hosts.values() if _is_ip(h.address)},
                      key=_net_key)
        return {zone.value: list(nets) for zone in Zone if zone is not Zone.USER} if nets else {}
    for cidr, (_site, _system, zone) in address_plan(model).items():
        out.setdefault(zone, []).append(cidr)
    return {zone: sorted(cidrs, key=_net_key) for zone, cidrs in sorted(out.items())}


def node_targets(model: SiteModel, port: int = NODE_EXPORTER_PORT) -> list[dict[str, Any]]:
    """Prometheus file_sd groups for node_exporter on every declared server.

    Standby twins are left out: most are powered off (only database twins run), so their targets
    would be down by design.
    """
    return [{"targets": [f"{h.address}:{port}"],  # str(): the loader may hand str subclasses
             "labels": {"site": str(h.site), "host": str(h.name), "role": str(h.role),
                        "zone": str(h.zone or "")}}
            for h in sorted(model.hosts.values(), key=lambda h: h.name)]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _net_key(cidr: str) -> tuple[int, int]:
    net = ipaddress.ip_network(cidr)
    return int(net.network_address), net.prefixlen
