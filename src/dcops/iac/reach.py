"""Which zone subnets of a DC the WAN must carry, per kind of link, and how they reach the VPN.

The VPN router of a DC joins each of these subnets on a port of its own (the zone's last usable
address, kept out of DHCP) so that VPNaaS can list them as local endpoints (Neutron only accepts
subnets attached to the VPN router), and each subnet gets a host route per peer prefix through
that port. Everything else stays off the WAN; security groups still decide what may pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcops.model.site import Site, SiteKind, SiteModel, Zone

from .flows import REPLICATION_SOURCES
from .layout import dhcp_pool, systems_at, wan_port_address
from .zones import BACKUP_DC_ZONES, tenant_zones

#: Link kinds: a DC to the other DC, to a (legacy) district office, to a commune-level office.
DC_LINK = "dc"
DISTRICT_LINK = "district"
COMMUNE_LINK = "commune"
__all__ = ["COMMUNE_LINK", "DC_LINK", "DISTRICT_LINK", "WanZone", "dhcp_pool", "link_of",
           "wan_port_address", "wan_zones"]

PEER_KINDS = {SiteKind.PRIMARY_DC: DC_LINK, SiteKind.BACKUP_DC: DC_LINK,
              SiteKind.DISTRICT: DISTRICT_LINK}


@dataclass(frozen=True, slots=True)
class WanZone:
    """A system's zone in this DC that a kind of WAN link must reach, and why."""

    system: str
    zone: Zone
    link: str
    reason: str


def link_of(site: Site) -> str | None:
    """The link kind towards a peer site (None: not a VPN peer).

    Since July 2025 the WAN runs from the DCs to every commune, ward and special zone: a commune
    site is a peer of its own. A commune grouped under a former district (`parent`, legacy) is
    reached through that district's link and is not a peer.
    """
    if site.kind is SiteKind.COMMUNE:
        return COMMUNE_LINK if site.parent is None else None
    return PEER_KINDS.get(site.kind)


def office_links(model: SiteModel) -> list[str]:
    """Link kinds to offices that use the published services: districts (legacy, always), and
    communes when the inventory has communes reached directly."""
    direct = any(link_of(s) == COMMUNE_LINK for s in model.sites.values())
    return [DISTRICT_LINK, COMMUNE_LINK] if direct else [DISTRICT_LINK]


def wan_zones(model: SiteModel, site: Site) -> list[WanZone]:
    """Zones of the DC's tenants reachable over the WAN, in inventory order.

    DC-DC: the replication zone of every DR system (backup DC) or the zones it replicates from
    (primary DC), and every management zone (bastions and the SOC/NOC administer both DCs).
    DC-commune (and DC-district, legacy): the DMZ of every system that publishes ports (the
    offices use the published services over the WAN, not the Internet).
    """
    out: list[WanZone] = []
    offices = office_links(model)
    for system in systems_at(model, site):
        zones = tenant_zones(system, site.kind)
        if system.dr and site.kind is SiteKind.BACKUP_DC:
            out.extend(WanZone(system.name, z, DC_LINK, "replication from the primary DC")
                       for z in zones if z in BACKUP_DC_ZONES)
        elif system.dr and site.kind is SiteKind.PRIMARY_DC:
            out.extend(WanZone(system.name, z, DC_LINK, f"replicates to the backup DC "
                               f"({REPLICATION_SOURCES[z][1]})")
                       for z in zones if z in REPLICATION_SOURCES)
        if Zone.MGMT in zones:
            out.append(WanZone(system.name, Zone.MGMT, DC_LINK, "administration of both DCs"))
        if system.public_ports and Zone.DMZ in zones:
            out.extend(WanZone(system.name, Zone.DMZ, link, f"published services for {link} "
                               "offices") for link in offices)
    return out
