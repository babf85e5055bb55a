"""Wan: IPsec VPN (VPNaaS) from one DC to the other DC and to every commune (or district) office."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_openstack as openstack

from dcops.iac.layout import subnet_cidr, transit_cidr
from dcops.iac.reach import DC_LINK, link_of, wan_port_address, wan_zones
from dcops.model.site import Site, SiteKind, SiteModel, Zone

from .common import child, desc, tags

#: Crypto of every tunnel: AES-256, SHA-256, PFS group 14 (policy `vpn-crypto`), IKEv2.
IKE = {"encryption_algorithm": "aes-256", "auth_algorithm": "sha256", "pfs": "group14"}
LIFETIME_S = {"ike": 28800, "ipsec": 3600}
PEER_DEVICE_CLASSES = ("wan_router", "district_router", "commune_router")


@dataclass
class WanArgs:
    """Inputs of a Wan: the model, the local DC, the gateway network and the pre-shared key."""

    model: SiteModel
    site: Site
    external_network_id: pulumi.Input[str] = ""
    psk: Any = None
    peer_addresses: dict[str, str] = field(default_factory=dict)
    #: (system, zone) -> (network, subnet) of the DC's tenants, for the zones the WAN reaches
    zone_networks: dict[tuple[str, Zone], tuple[Any, Any]] = field(default_factory=dict)


def peer_address(model: SiteModel, site: Site, overrides: dict[str, str]) -> str:
    """The VPN peer of a site: configured, else its WAN router, else .1 of its first subnet."""
    if site.name in overrides:
        return overrides[site.name]
    for device in model.devices_at(site.name):
        if device.device_class in PEER_DEVICE_CLASSES:
            return device.address
    if site.subnets:
        return str(next(ipaddress.ip_network(site.subnets[0]).hosts()))
    return ""


class Wan(pulumi.ComponentResource):
    """A transit network and VPN service in one DC with a site connection per peer site."""

    def __init__(self, name: str, args: WanArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dcops:wan:Wan", name, None, opts)
        model, site = args.model, args.site
        level = max((s.level for s in model.systems.values()), default=1)
        dc = "backup" if site.kind is SiteKind.BACKUP_DC else "primary"
        base: dict[str, object] = {"system": "wan", "zone": "wan", "level": level,
                                   "site": site.name, "dc": dc}
        self.project = openstack.identity.Project(
            name, name=f"wan-{site.name}", description="Provincial WAN (VPN) / Mạng WAN tỉnh",
            tags=tags(base), opts=child(self))
        net = openstack.networking.Network(
            f"{name}-transit-net", name=f"wan-transit-{site.name}", tenant_id=self.project.id,
            port_security_enabled=True, tags=tags(base), opts=child(self))
        sub = openstack.networking.Subnet(
            f"{name}-transit-subnet", name=f"wan-transit-{site.name}", network_id=net.id,
            tenant_id=self.project.id, cidr=transit_cidr(model, site), ip_version=4,
            tags=tags(base), opts=child(self))
        router = openstack.networking.Router(
            f"{name}-router", name=f"wan-{site.name}", tenant_id=self.project.id,
            external_network_id=args.external_network_id or None, tags=tags(base),
            opts=child(self))
        openstack.networking.RouterInterface(
            f"{name}-transit-rif", router_id=router.id, subnet_id=sub.id, opts=child(self))
        ike = openstack.vpnaas.IkePolicy(
            f"{name}-ike", name=f"wan-ike-{site.name}", tenant_id=self.project.id,
            ike_version="v2", phase1_negotiation_mode="main",
            lifetimes=[openstack.vpnaas.IkePolicyLifetimeArgs(
                units="seconds", value=LIFETIME_S["ike"])],
            description=desc("IKEv2 AES-256/SHA-256/group14", base), opts=child(self), **IKE)
        ipsec = openstack.vpnaas.IpSecPolicy(
            f"{name}-ipsec", name=f"wan-ipsec-{site.name}", tenant_id=self.project.id,
            transform_protocol="esp", encapsulation_mode="tunnel",
            lifetimes=[openstack.vpnaas.IpSecPolicyLifetimeArgs(
                units="seconds", value=LIFETIME_S["ipsec"])],
            description=desc("ESP tunnel AES-256/SHA-256/group14", base), opts=child(self),
            **IKE)
        service = openstack.vpnaas.Service(
            f"{name}-vpn", name=f"wan-vpn-{site.name}", tenant_id=self.project.id,
            router_id=router.id, description=desc("DC VPN service", base), opts=child(self))
        peers = [p for p in sorted(model.sites.values(), key=lambda s: s.name)
                 if p.name != site.name and p.wan_prefixes and link_of(p) is not None]
        locals_ = self._local_groups(name, args, router, sub, base, peers)
        self.connections: dict[str, openstack.vpnaas.SiteConnection] = {}
        for peer in peers:
            link = link_of(peer) or DC_LINK
            local = locals_[link]
            pbase = {**base, "peer": peer.name, "link": link}
            peer_eg = openstack.vpnaas.EndpointGroup(
                f"{name}-peer-{peer.name}-eg", name=f"wan-peer-{peer.name}",
                tenant_id=self.project.id, type="cidr", endpoints=list(peer.wan_prefixes),
                description=desc(f"{peer.display_name} LAN", pbase), opts=child(self))
            address = peer_address(model, peer, args.peer_addresses)
            self.connections[peer.name] = openstack.vpnaas.SiteConnection(
                f"{name}-to-{peer.name}", name=f"{site.name}--{peer.name}",
                tenant_id=self.project.id, ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id,
                vpnservice_id=service.id, local_ep_group_id=local.id,
                peer_ep_group_id=peer_eg.id, peer_address=address, peer_id=address,
                psk=args.psk, initiator="bi-directional",
                dpds=[openstack.vpnaas.SiteConnectionDpdArgs(
                    action="restart", interval=30, timeout=120)],
                description=desc(f"{site.display_name} <-> {peer.display_name}", pbase),
                opts=child(self))
        self.register_outputs({
            "project_id": self.project.id, "router_id": router.id,
            "connections": {p: c.id for p, c in self.connections.items()},
        })

    def _local_groups(self, name: str, args: WanArgs, router: openstack.networking.Router,
                      transit: openstack.networking.Subnet, base: dict[str, object],
                      peers: list[Site]) -> dict[str, openstack.vpnaas.EndpointGroup]:
        """Per link kind: the zone subnets it carries, joined to the VPN router and routed.

        Each zone subnet gets a port of the VPN router (Neutron only accepts local endpoint
        subnets attached to the VPN router) and a host route per peer prefix through it; the
        zone keeps its own router as default gateway.
        """
        model, site = args.model, args.site
        peer_cidrs = {link: sorted({c for p in peers if link_of(p) == link for c in p.wan_prefixes})
                      for link in {link_of(p) for p in peers} if link is not None}
        members: dict[str, list[Any]] = {link: [] for link in peer_cidrs}
        levels = {n: s.level for n, s in model.systems.items()}
        joined: dict[tuple[str, Zone], str] = {}
        for wz in wan_zones(model, site):
            if wz.link not in members or (wz.system, wz.zone) not in args.zone_networks:
                continue
            net, subnet = args.zone_networks[(wz.system, wz.zone)]
            key = (wz.system, wz.zone)
            zname = f"{name}-{wz.system}-{wz.zone.value}"
            cidr = subnet_cidr(model, site, wz.system, wz.zone)
            hop = wan_port_address(cidr)
            if key not in joined:
                zbase = {**base, "system": wz.system, "zone": wz.zone.value,
                         "level": levels[wz.system]}
                port = openstack.networking.Port(
                    f"{zname}-port", name=f"wan-{wz.system}-{wz.zone.value}", network_id=net.id,
                    tenant_id=self.project.id, admin_state_up=True,
                    fixed_ips=[openstack.networking.PortFixedIpArgs(
                        subnet_id=subnet.id, ip_address=hop)],
                    tags=tags(zbase), opts=child(self))
                openstack.networking.RouterInterface(
                    f"{zname}-rif", router_id=router.id, port_id=port.id, opts=child(self))
                joined[key] = wz.link
            for dest in peer_cidrs[wz.link]:
                openstack.networking.SubnetRoute(
                    f"{zname}-route-{wz.link}-{dest.replace('/', '_')}", subnet_id=subnet.id,
                    destination_cidr=dest, next_hop=hop, opts=child(self))
            members[wz.link].append(subnet.id)
        out: dict[str, openstack.vpnaas.EndpointGroup] = {}
        for link, subnets in members.items():
            what = "zone subnets" if subnets else "transit subnet (no zone needs this link)"
            out[link] = openstack.vpnaas.EndpointGroup(
                f"{name}-local-{link}-eg", name=f"wan-local-{link}-{site.name}",
                tenant_id=self.project.id, type="subnet", endpoints=subnets or [transit.id],
                description=desc(f"local {what} for {link} links", {**base, "link": link}),
                opts=child(self))
        return out
