"""Security-group rules of a system's tenant, derived from the inventory's declared flows."""

from __future__ import annotations

from dataclasses import dataclass

from dcops.model.site import Flow, Site, SiteKind, SiteModel, System, Zone

from .layout import STACK_KINDS, IacInputError, stack_site, subnet_cidr, systems_at
from .zones import tenant_zones

ANYWHERE = "0.0.0.0/0"
#: What the backup DC's replication zone accepts from the primary twin: zone -> (port, purpose).
REPLICATION_SOURCES = {Zone.DB: (5432, "PostgreSQL streaming replication"),
                       Zone.APP: (873, "rsync of application data")}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One security-group rule: in `zone`'s group, `direction` to/from `remote_cidr`."""

    zone: Zone
    direction: str  # "ingress" or "egress"
    protocol: str
    port: int
    remote_cidr: str
    text: str


def _home(model: SiteModel, site: Site, system: str) -> Site:
    """The site where a flow's other end lives: this DC if it has a tenant here, else its home."""
    if any(s.name == system for s in systems_at(model, site)):
        return site
    return model.sites[model.systems[system].site]


def _label(flow: Flow, owner: System) -> str:
    src = f"{flow.source_system or owner.name}/{flow.source_zone.value}"
    dst = f"{flow.dest_system or owner.name}/{flow.dest_zone.value}"
    note = f" ({flow.description})" if flow.description else ""
    return f"{src} -> {dst} {flow.protocol}/{flow.port}{note}"


def rules_for(model: SiteModel, site: Site, system: System) -> list[RuleSpec]:
    """Ingress and egress rules of a system's zones at a site; nothing else is allowed."""
    rules: list[RuleSpec] = []
    zones = set(tenant_zones(system, site.kind))
    for owner in model.systems.values():
        for flow in owner.flows:
            src_sys = flow.source_system or owner.name
            dst_sys = flow.dest_system or owner.name
            text = _label(flow, owner)
            if dst_sys == system.name and flow.dest_zone in zones:
                remote = subnet_cidr(model, _home(model, site, src_sys), src_sys, flow.source_zone)
                rules.append(RuleSpec(flow.dest_zone, "ingress", flow.protocol, flow.port,
                                      remote, text))
            if src_sys == system.name and flow.source_zone in zones:
                remote = subnet_cidr(model, _home(model, site, dst_sys), dst_sys, flow.dest_zone)
                rules.append(RuleSpec(flow.source_zone, "egress", flow.protocol, flow.port,
                                      remote, text))
    if Zone.DMZ in zones:
        rules.extend(RuleSpec(Zone.DMZ, "ingress", "tcp", port, ANYWHERE,
                              f"Internet -> {system.name}/dmz tcp/{port} (published service)")
                     for port in system.public_ports)
    if system.dr:
        rules.extend(_replication(model, site, system))
    return rules


def _replication(model: SiteModel, site: Site, system: System) -> list[RuleSpec]:
    """Primary data zones -> backup replication zone, seen from whichever DC this is."""
    try:
        primary = stack_site(model, "primary")
        backup = stack_site(model, "backup")
    except IacInputError:  # a model without two DCs simply has no replication
        return []
    rules: list[RuleSpec] = []
    for zone, (port, purpose) in REPLICATION_SOURCES.items():
        if zone not in tenant_zones(system, SiteKind.PRIMARY_DC):
            continue
        text = (f"{system.name}/{zone.value} -> backup {system.name}/replication "
                f"tcp/{port} ({purpose})")
        if site.kind is SiteKind.BACKUP_DC:
            rules.append(RuleSpec(Zone.REPLICATION, "ingress", "tcp", port,
                                  subnet_cidr(model, primary, system.name, zone), text))
        elif site.kind is SiteKind.PRIMARY_DC:
            rules.append(RuleSpec(zone, "egress", "tcp", port,
                                  subnet_cidr(model, backup, system.name, Zone.REPLICATION), text))
    return rules


__all__ = ["ANYWHERE", "REPLICATION_SOURCES", "STACK_KINDS", "RuleSpec", "rules_for"]
