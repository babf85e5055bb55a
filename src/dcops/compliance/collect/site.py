"""Evidence from the site model itself: level approval, HA peers, SNMPv3, distance between DCs,
and the ports each host's declared services and dcops roles open."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dcops.compliance.evidence import Evidence
from dcops.inventory.ansible_io import read
from dcops.inventory.roleports import project_root, role_ports
from dcops.model import SiteKind, SiteModel

# Ports a declared host service may listen on (inventory `dcops_services`).
SERVICE_PORTS: dict[str, tuple[str, ...]] = {
    "nginx": ("tcp/80", "tcp/443"),
    "apache2": ("tcp/80", "tcp/443"),
    "postgresql": ("tcp/5432",),
    "rsyslog": ("tcp/514", "udp/514", "tcp/6514"),
    "prometheus": ("tcp/9090",),
    "alertmanager": ("tcp/9093",),
    "node_exporter": ("tcp/9100",),
    "restic_rest": ("tcp/8000",),
    "snmpd": ("udp/161",),
    "dcops": ("tcp/8080",),
}


class SiteCollector:
    """Reads the inventory (already loaded): no I/O beyond what load_inventory did."""

    name = "site"

    def __init__(self, inventory: str) -> None:
        self.inventory = inventory

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Facts per system and global facts from the model."""
        for system in model.systems.values():
            where = str(system.source or self.inventory)
            rid = evidence.record("site", system.name, where, "inventory: dcops_systems",
                                  f"level={system.level} approval={system.approval!r} "
                                  f"dr={system.dr} zones={[z.value for z in system.zones]}",
                                  name="system")
            subject = f"system:{system.name}"
            evidence.fact(subject, "system.approval", system.approval, rid,
                          f"approval: {system.approval or '(none)'}")
            evidence.fact(subject, "system.dr", system.dr, rid, f"dr: {system.dr}")
            hosts = model.hosts_of_system(system.name)
            peers = Counter(h.ha_group for h in model.hosts.values() if h.ha_group)
            lonely = sorted(h.name for h in hosts if not h.ha_group or peers[h.ha_group] < 2)
            evidence.fact(subject, "site.hosts_without_peer", lonely, rid,
                          "; ".join(f"{h.name} ha_group={h.ha_group or '-'}" for h in hosts))
        rid = evidence.record("site", "global", self.inventory, "inventory: devices, sites",
                              f"{len(model.devices)} devices, {len(model.sites)} sites",
                              name="global")
        weak = sorted(d.name for d in model.devices.values()
                      if d.snmp is None or d.snmp.version != "3")
        evidence.fact("global", "site.devices_without_snmpv3", weak, rid,
                      ", ".join(weak[:20]) or f"all {len(model.devices)} devices use SNMPv3")
        self._ports(model, evidence)
        primary = model.sites_of(SiteKind.PRIMARY_DC)
        backup = model.sites_of(SiteKind.BACKUP_DC)
        if primary and backup and primary[0].location and backup[0].location:
            km = round(primary[0].location.distance_km(backup[0].location), 1)
            evidence.fact("global", "site.dc_distance_km", km, rid,
                          f"{primary[0].display_name_vi} ↔ {backup[0].display_name_vi}: {km} km")

    def _ports(self, model: SiteModel, evidence: Evidence) -> None:
        """`ports.declared` per host: port -> who declared it (dcops_services, or a dcops role
        site.yml applies to the host, templated from the role's variables)."""
        inventory = Path(self.inventory)
        root = project_root(inventory)
        by_role = role_ports(root, read(inventory)) if root is not None else {}
        where = str(root / "playbooks" / "site.yml") if root is not None else self.inventory
        for host in model.hosts.values():
            declared: dict[str, str] = {}
            for service in host.services:
                for port in SERVICE_PORTS.get(service, ()):
                    declared.setdefault(port, f"dcops_services: {service}")
            for rp in by_role.get(host.name, []):
                declared.setdefault(rp.port, rp.source())
            lines = [f"{p}: {s}" for p, s in sorted(declared.items())]
            if root is None:
                lines.append("no playbooks/site.yml above the inventory: role ports unknown")
            rid = evidence.record("site", host.name, where,
                                  "inventory dcops_services; site.yml plays and the roles' "
                                  "meta/ports.yml", "\n".join(lines) or "none", name="ports")
            evidence.fact(host.name, "ports.declared", declared, rid,
                          "; ".join(lines) or "no declared service or role port")
