"""What goes where: systems and hosts per DC stack, standby twins and the address plan."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass

from dcops.errors import ConfigError
from dcops.model.site import Host, Site, SiteKind, SiteModel, System, Zone

from .zones import tenant_zones


class IacInputError(ConfigError):
    """The site model cannot be turned into infrastructure; names the inventory file and key."""


#: Pulumi stack name -> the kind of site it provisions.
STACK_KINDS = {"primary": SiteKind.PRIMARY_DC, "backup": SiteKind.BACKUP_DC}

#: Third-octet block of each zone inside a site's /16 (10.10.<block + system index>.0/24).
ZONE_BLOCK = {Zone.DMZ: 10, Zone.APP: 20, Zone.DB: 30, Zone.MGMT: 40, Zone.DEVMGMT: 50,
              Zone.REPLICATION: 60, Zone.USER: 70}
MAX_SYSTEMS = 10  # systems per site before the blocks overlap
TRANSIT_INDEX = 250  # 10.10.250.0/24: the WAN transit network of a DC


@dataclass(frozen=True, slots=True)
class TwinUnit:
    """A primary workload (an HA group or a lone host) that the backup DC mirrors as a standby."""

    system: str
    unit: str
    zone: Zone
    flavor: str
    volume_gb: int
    hosts: tuple[str, ...]


def stack_site(model: SiteModel, stack: str) -> Site:
    """The site a stack provisions ("primary" or "backup")."""
    if stack not in STACK_KINDS:
        raise IacInputError(f"unknown stack {stack!r}; expected one of {sorted(STACK_KINDS)}")
    sites = model.sites_of(STACK_KINDS[stack])
    if not sites:
        raise IacInputError(f"the inventory has no site of kind {STACK_KINDS[stack].value}",
                            file=model.inventory_dir or None, key="dcops_sites")
    return sites[0]


def _where(model: SiteModel, system: System) -> tuple[str | None, int | None]:
    """File (under the inventory directory when relative) and line declaring a system."""
    if system.source is None:
        return model.inventory_dir or None, None
    file = system.source.file
    if model.inventory_dir and not os.path.isabs(file):
        file = os.path.join(model.inventory_dir, file)
    return file, system.source.line


def check_flows(model: SiteModel) -> None:
    """Every flow names known systems and zones those systems have (else IacInputError)."""
    for system in model.systems.values():
        file, line = _where(model, system)
        if system.site not in model.sites:
            raise IacInputError(f"system {system.name!r} is hosted at unknown site "
                                f"{system.site!r}", file=file, line=line,
                                key=f"dcops_systems.{system.name}.site")
        for i, flow in enumerate(system.flows):
            for end, other, zone in (("from", flow.source_system, flow.source_zone),
                                     ("to", flow.dest_system, flow.dest_zone)):
                key = f"dcops_systems.{system.name}.flows[{i}]"
                name = other or system.name
                peer = model.systems.get(name)
                if peer is None:
                    raise IacInputError(
                        f"flow names unknown system {name!r}; known: "
                        f"{', '.join(sorted(model.systems))}", file=file, line=line,
                        key=f"{key}.{end}_system")
                zones = tenant_zones(peer, SiteKind.PRIMARY_DC)
                if zone not in zones:
                    raise IacInputError(
                        f"flow names zone {zone.value!r} which system {name!r} does not have; "
                        f"its zones: {', '.join(z.value for z in zones)}", file=file, line=line,
                        key=f"{key}.{end}")


def systems_at(model: SiteModel, site: Site) -> list[System]:
    """Systems with a tenant at the site: hosted there, with hosts there, or mirrored (backup)."""
    with_hosts = {s for h in model.hosts.values() if h.site == site.name for s in h.systems}
    return [s for s in model.systems.values()
            if s.site == site.name or s.name in with_hosts
            or (site.kind is SiteKind.BACKUP_DC and s.dr)]


def hosts_at(model: SiteModel, site: Site, system: str) -> list[Host]:
    """Hosts of a system placed at a site (the first system a host serves owns it)."""
    return [h for h in model.hosts_of_system(system)
            if h.site == site.name and h.systems and h.systems[0] == system]


def twin_units(model: SiteModel) -> list[TwinUnit]:
    """Primary workloads of DR systems that need a standby twin in the backup DC."""
    units: list[TwinUnit] = []
    for system in model.systems.values():
        site = model.sites.get(system.site)
        if not system.dr or site is None or site.kind is not SiteKind.PRIMARY_DC:
            continue
        groups: dict[str, list[Host]] = {}
        for host in hosts_at(model, site, system.name):
            groups.setdefault(host.ha_group or host.name, []).append(host)
        for unit, hosts in groups.items():
            first = hosts[0]
            units.append(TwinUnit(system.name, unit, first.zone or Zone.APP, first.flavor,
                                  max(h.volume_gb for h in hosts),
                                  tuple(h.name for h in hosts)))
    return units


def _site_prefix(model: SiteModel, site: Site) -> ipaddress.IPv4Network:
    if not site.subnets:
        raise IacInputError(f"site {site.name!r} has no subnets to carve zones from",
                            file=site.source.file if site.source else None,
                            key=f"dcops_sites.{site.name}.subnets")
    net = ipaddress.ip_network(site.subnets[0])
    if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 16:
        raise IacInputError(f"site {site.name!r}: first subnet {net} must be an IPv4 /16 or "
                            "larger", file=site.source.file if site.source else None,
                            key=f"dcops_sites.{site.name}.subnets")
    return net


def _nth_24(net: ipaddress.IPv4Network, index: int) -> str:
    return str(ipaddress.ip_network((int(net.network_address) + (index << 8), 24)))


def subnet_cidr(model: SiteModel, site: Site, system: str, zone: Zone) -> str:
    """The /24 of a system's zone at a site; stable when systems are appended to the inventory."""
    index = list(model.systems).index(system)
    if index >= MAX_SYSTEMS:
        raise IacInputError(f"system {system!r} is number {index + 1}; the address plan holds "
                            f"{MAX_SYSTEMS} systems per site", key=f"dcops_systems.{system}")
    return _nth_24(_site_prefix(model, site), ZONE_BLOCK[zone] + index)


def wan_port_address(cidr: str) -> str:
    """The VPN router's address in a zone subnet: its last usable address."""
    return str(ipaddress.ip_network(cidr).broadcast_address - 1)


def dhcp_pool(cidr: str) -> tuple[str, str]:
    """DHCP range of a zone subnet: after the system router (.1), before the VPN router."""
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + 2), str(net.broadcast_address - 2)


def host_address_problem(address: str, cidr: str) -> str | None:
    """Why an inventory address cannot be a host's fixed IP in a zone subnet (None: it can)."""
    try:
        addr, net = ipaddress.ip_address(address), ipaddress.ip_network(cidr)
    except ValueError:
        return f"address {address!r} is not an IP address"
    if addr not in net:
        return f"address {address} is outside {cidr}"
    if addr == net.network_address + 1:
        return f"address {address} is the zone router's (gateway) address in {cidr}"
    if str(addr) == wan_port_address(cidr):
        return f"address {address} is reserved for the VPN router in {cidr}"
    if addr in (net.network_address, net.broadcast_address):
        return f"address {address} is not a host address of {cidr}"
    return None


def transit_cidr(model: SiteModel, site: Site) -> str:
    """The /24 of a DC's WAN transit network (VPN service local endpoint)."""
    return _nth_24(_site_prefix(model, site), TRANSIT_INDEX)


def address_plan(model: SiteModel) -> dict[str, tuple[str, str, str]]:
    """Every zone subnet of both DCs: CIDR -> (site, system, zone)."""
    plan: dict[str, tuple[str, str, str]] = {}
    for stack in STACK_KINDS:
        try:
            site = stack_site(model, stack)
        except IacInputError:
            continue
        for system in systems_at(model, site):
            for zone in tenant_zones(system, site.kind):
                plan[subnet_cidr(model, site, system.name, zone)] = (
                    site.name, system.name, zone.value)
    return plan


def address_mismatches(model: SiteModel, stacks: Iterable[str] = tuple(STACK_KINDS)) -> list[str]:
    """Hosts whose inventory address lies outside their zone subnet (they will get DHCP)."""
    out: list[str] = []
    for stack in stacks:
        try:
            site = stack_site(model, stack)
        except IacInputError:
            continue
        for system in systems_at(model, site):
            for host in hosts_at(model, site, system.name):
                zone = host.zone or Zone.APP
                cidr = subnet_cidr(model, site, system.name, zone)
                problem = host_address_problem(host.address, cidr)
                if problem:
                    where = f" ({host.source})" if host.source else ""
                    out.append(f"host {host.name}{where} in {system.name}/{zone.value}: "
                               f"{problem}; it will get one by DHCP")
    return out
