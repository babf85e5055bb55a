"""The DC address plan, computed once from the site model: zone subnets, placement, twins.

`inventory check` (dcops.inventory.planchecks) and the IaC (dcops.iac, pulumi/components) both
use these functions, so the two can never disagree about where a host or a subnet belongs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dcops.errors import InventoryError
from dcops.model.site import Host, Site, SiteKind, SiteModel, System, Zone

from .zones import tenant_zones

#: Pulumi stack name -> the kind of site it provisions.
STACK_KINDS = {"primary": SiteKind.PRIMARY_DC, "backup": SiteKind.BACKUP_DC}

#: Third-octet block of each zone inside a DC's /16 (10.10.<block + system index>.0/24).
ZONE_BLOCK = {Zone.DMZ: 10, Zone.APP: 20, Zone.DB: 30, Zone.MGMT: 40, Zone.DEVMGMT: 50,
              Zone.REPLICATION: 60, Zone.USER: 70}
MAX_SYSTEMS = 10  # systems per site before the blocks overlap
TRANSIT_INDEX = 250  # 10.10.250.0/24: the WAN transit network of a DC


class AddressPlanError(InventoryError):
    """The address plan cannot be computed (`inventory check` names the key beforehand)."""


@dataclass(frozen=True, slots=True)
class TwinUnit:
    """A primary workload (an HA group or a lone host) that the backup DC mirrors as a standby."""

    system: str
    unit: str
    zone: Zone
    flavor: str
    volume_gb: int
    hosts: tuple[str, ...]


def dc_sites(model: SiteModel) -> dict[str, Site]:
    """stack -> the DC site it provisions (the first of its kind), for the DCs that exist."""
    out: dict[str, Site] = {}
    for stack, kind in STACK_KINDS.items():
        sites = model.sites_of(kind)
        if sites:
            out[stack] = sites[0]
    return out


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
    """Primary workloads of DR systems that need a standby twin in the backup DC.

    An HA group with members in both DCs (the Alertmanager pair: `dcops_ha_group` on a primary
    and a backup-DC host) already runs in the backup DC, so it gets no standby twin.
    """
    units: list[TwinUnit] = []
    backup = dc_sites(model).get("backup")
    for system in model.systems.values():
        site = model.sites.get(system.site)
        if not system.dr or site is None or site.kind is not SiteKind.PRIMARY_DC:
            continue
        across = ({h.ha_group for h in hosts_at(model, backup, system.name) if h.ha_group}
                  if backup is not None else set())
        groups: dict[str, list[Host]] = {}
        for host in hosts_at(model, site, system.name):
            groups.setdefault(host.ha_group or host.name, []).append(host)
        for unit, hosts in groups.items():
            if hosts[0].ha_group and hosts[0].ha_group in across:
                continue
            zoned = [h.zone for h in hosts if h.zone is not None]
            if not zoned:  # a host without a zone is an inventory error, not an app server
                continue
            first = hosts[0]
            units.append(TwinUnit(system.name, unit, zoned[0], first.flavor,
                                  max(h.volume_gb for h in hosts),
                                  tuple(h.name for h in hosts)))
    return units


def prefix_key(site: Site) -> str:
    """The inventory key the address plan carves a DC's zones from (for error messages)."""
    return f"dcops_sites.{site.name}.{'cloud_prefix' if site.cloud_prefix else 'subnets'}"


def site_prefix_problem(site: Site) -> str | None:
    """Why a DC site's plan prefix (cloud_prefix, else its first subnet) cannot hold the zone
    plan (None: it can)."""
    hint = (f"; or declare dcops_sites.{site.name}.cloud_prefix, an IPv4 /16 of the cloud "
            "separate from the site's LAN subnets")
    if site.cloud_prefix:
        what = f"cloud_prefix {site.cloud_prefix!r}"
        hint = ""
    elif site.subnets:
        what = f"first subnet {site.subnets[0]!r}"
    else:
        return (f"site {site.name!r} has no subnets to carve zones from (expected an IPv4 /16)"
                + hint)
    try:
        net = ipaddress.ip_network(site.plan_prefix)
    except ValueError:
        return (f"site {site.name!r}: {what} is not a network address (expected an IPv4 /16 "
                f"such as 10.10.0.0/16){hint}")
    if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 16:
        return f"site {site.name!r}: {what} must be an IPv4 /16 or larger{hint}"
    return None


def _site_prefix(site: Site) -> ipaddress.IPv4Network:
    problem = site_prefix_problem(site)
    if problem is not None:
        raise AddressPlanError(problem, file=site.source.file if site.source else None,
                               key=prefix_key(site))
    net = ipaddress.ip_network(site.plan_prefix)
    assert isinstance(net, ipaddress.IPv4Network)
    return net


def _nth_24(net: ipaddress.IPv4Network, index: int) -> str:
    return str(ipaddress.ip_network((int(net.network_address) + (index << 8), 24)))


def system_index(model: SiteModel, system: str) -> int:
    """Position of a system in dcops_systems: its offset in every zone block."""
    return list(model.systems).index(system)


def subnet_cidr(model: SiteModel, site: Site, system: str, zone: Zone) -> str:
    """The /24 of a system's zone at a site; stable when systems are appended to the inventory."""
    index = system_index(model, system)
    if index >= MAX_SYSTEMS:
        raise AddressPlanError(f"system {system!r} is number {index + 1}; the address plan holds "
                               f"{MAX_SYSTEMS} systems per site", key=f"dcops_systems.{system}")
    return _nth_24(_site_prefix(site), ZONE_BLOCK[zone] + index)


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
    del model
    return _nth_24(_site_prefix(site), TRANSIT_INDEX)


def address_plan(model: SiteModel) -> dict[str, tuple[str, str, str]]:
    """Every zone subnet of both DCs: CIDR -> (site, system, zone)."""
    plan: dict[str, tuple[str, str, str]] = {}
    for site in dc_sites(model).values():
        for system in systems_at(model, site):
            for zone in tenant_zones(system, site.kind):
                plan[subnet_cidr(model, site, system.name, zone)] = (
                    site.name, system.name, zone.value)
    return plan
