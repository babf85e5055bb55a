"""Policy `wan-endpoints`: what the WAN must carry is a VPN local endpoint, attached and routed.

Works on planned resources (references are IDs in the properties) and on CrossGuard resources
(references are the resources in `refs`, from `property_dependencies`, identified by URN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .reach import DC_LINK
from .resources import (
    CONNECTION,
    PORT,
    PROJECT,
    RIF,
    ROUTE,
    SERVICE,
    SUBNET,
    Finding,
    PolicyContext,
    ResourceView,
)
from .zones import BACKUP_DC_ZONES

#: Zones of a DR system in the primary DC that replicate to the backup DC (flows.py).
REPLICATING_ZONES = frozenset({"db", "app"})


def ident(res: ResourceView) -> str:
    """How other resources refer to this one: its ID (plans) or URN (CrossGuard)."""
    return str(getattr(res, "id", "") or getattr(res, "urn", "") or res.name)


def refs(res: ResourceView, prop: str) -> set[str]:
    """Identifiers a property refers to (CrossGuard dependencies first, else the values)."""
    deps: Mapping[str, Sequence[str]] = getattr(res, "refs", None) or {}
    if deps.get(prop):
        return set(deps[prop])
    value = res.props.get(prop)
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str) and v}
    return set()


def _port_subnets(port: ResourceView) -> tuple[set[str], set[str]]:
    """Subnets a port sits on and its addresses."""
    subnets, addrs = set(refs(port, "fixedIps")), set()
    for fixed in port.props.get("fixedIps") or []:
        if isinstance(fixed, Mapping):
            if isinstance(fixed.get("subnetId"), str) and fixed.get("subnetId"):
                subnets.add(str(fixed["subnetId"]))
            if fixed.get("ipAddress"):
                addrs.add(str(fixed["ipAddress"]))
    return subnets, addrs


def _must_replicate(subnet: ResourceView, dr_systems: set[str]) -> bool:
    tags = subnet.tags
    if tags.get("system") not in dr_systems:
        return False
    if tags.get("dc") == "backup":
        return tags.get("zone") in {z.value for z in BACKUP_DC_ZONES}
    return tags.get("dc") == "primary" and tags.get("zone") in REPLICATING_ZONES


@dataclass
class _Wan:
    """The stack's VPN wiring, indexed once: endpoint groups, router ports, host routes."""

    by_id: dict[str, ResourceView]
    members: dict[str, set[str]] = field(default_factory=dict)  # link -> local subnet ids
    wanted: dict[tuple[str, str], str] = field(default_factory=dict)  # (subnet, cidr) -> peer
    local_groups: dict[str, ResourceView] = field(default_factory=dict)
    direct: set[str] = field(default_factory=set)  # subnets whose gateway is the VPN router
    hops: dict[str, set[str]] = field(default_factory=dict)  # subnet -> VPN router addresses

    @classmethod
    def index(cls, res_list: Sequence[ResourceView]) -> _Wan:
        wan = cls({ident(r): r for r in res_list})
        for conn in (r for r in res_list if r.type == CONNECTION):
            wan.add_connection(conn)
        vpn_routers = {rid for r in res_list if r.type == SERVICE for rid in refs(r, "routerId")}
        ports = {ident(p): _port_subnets(p) for p in res_list if p.type == PORT}
        for rif in (r for r in res_list if r.type == RIF):
            if refs(rif, "routerId") & vpn_routers:
                wan.direct |= refs(rif, "subnetId")
                for port in refs(rif, "portId"):
                    subnets, addrs = ports.get(port, (set(), set()))
                    for sid in subnets:
                        wan.hops.setdefault(sid, set()).update(addrs)
        return wan

    def add_connection(self, conn: ResourceView) -> None:
        local = {g for g in refs(conn, "localEpGroupId") if g in self.by_id}
        subnets = {s for g in local for s in refs(self.by_id[g], "endpoints")}
        self.local_groups.update({g: self.by_id[g] for g in local})
        self.members.setdefault(conn.tags.get("link", ""), set()).update(subnets)
        for group in refs(conn, "peerEpGroupId") & set(self.by_id):
            for cidr in self.by_id[group].props.get("endpoints") or []:
                for sid in subnets:
                    self.wanted.setdefault((sid, str(cidr)), conn.tags.get("peer", conn.name))


def _replication(res_list: Sequence[ResourceView], wan: _Wan) -> Iterable[Finding]:
    dr = {r.tags.get("system", "") for r in res_list
          if r.type == PROJECT and r.tags.get("dr") == "true"}
    for sub in res_list:
        if sub.type == SUBNET and _must_replicate(sub, dr) \
                and ident(sub) not in wan.members.get(DC_LINK, set()):
            yield sub, (f"replication subnet {sub.props.get('cidr', '?')} of DR system "
                        f"{sub.tags.get('system')!r} ({sub.tags.get('zone')}) is not a local "
                        "endpoint of the DC-DC VPN connection; replication would not pass "
                        "through the VPN")


def _attachment(wan: _Wan) -> Iterable[Finding]:
    attached = wan.direct | set(wan.hops)
    for _, group in sorted(wan.local_groups.items()):
        for sid in sorted(refs(group, "endpoints") - attached):
            where = wan.by_id[sid].name if sid in wan.by_id else sid
            yield group, (f"local endpoint subnet {where} is not attached to the VPN router; "
                          "Neutron refuses it and nothing routes it to the VPN")


def _routes(res_list: Sequence[ResourceView], wan: _Wan) -> Iterable[Finding]:
    routes = {(sid, str(r.props.get("destinationCidr")), str(r.props.get("nextHop")))
              for r in res_list if r.type == ROUTE for sid in refs(r, "subnetId")}
    for (sid, cidr), peer in sorted(wan.wanted.items()):
        if sid in wan.direct or sid not in wan.hops or sid not in wan.by_id:
            continue  # the VPN router is the gateway, or reported as not attached
        if not any((sid, cidr, hop) in routes for hop in wan.hops[sid]):
            yield wan.by_id[sid], (
                f"no host route to {cidr} (peer {peer}) through the VPN router "
                f"({', '.join(sorted(wan.hops[sid]))}); traffic to the peer would leave by the "
                "zone's own router, outside the VPN")


def check_wan_endpoints(res_list: Sequence[ResourceView],
                        ctx: PolicyContext) -> Iterable[Finding]:
    """DR replication subnets are DC-DC local endpoints; each local endpoint is on the VPN
    router and has a host route to every peer prefix through it."""
    del ctx
    if not any(r.type == CONNECTION for r in res_list):
        return
    wan = _Wan.index(res_list)
    yield from _replication(res_list, wan)
    yield from _attachment(wan)
    yield from _routes(res_list, wan)
