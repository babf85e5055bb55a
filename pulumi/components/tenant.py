"""SystemTenant: one information system in one DC (project, zones, security groups, servers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_openstack as openstack

from dcops.iac.flows import RuleSpec
from dcops.iac.layout import IacInputError, TwinUnit, dhcp_pool, host_address_problem, subnet_cidr
from dcops.inventory.derived import twin_hosts
from dcops.model.site import Host, Site, SiteKind, SiteModel, System, Zone

from .common import child, desc, tags


@dataclass
class SystemTenantArgs:
    """Inputs of a SystemTenant: the system, where it lives and what to put there."""

    model: SiteModel
    site: Site
    system: System
    zones: tuple[Zone, ...]
    rules: list[RuleSpec]
    hosts: list[Host] = field(default_factory=list)
    twins: list[TwinUnit] = field(default_factory=list)
    image_name: str = "debian-12-generic-amd64"
    default_flavor: str = "m1.medium"
    external_network_id: pulumi.Input[str] = ""
    operator_user_id: pulumi.Input[str] = ""
    operator_role_id: pulumi.Input[str] = ""


class SystemTenant(pulumi.ComponentResource):
    """A project per system with a network, subnet and default-deny security group per zone."""

    def __init__(self, name: str, args: SystemTenantArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dcops:dc:SystemTenant", name, None, opts)
        system, site = args.system, args.site
        dc = "backup" if site.kind is SiteKind.BACKUP_DC else "primary"
        self.base: dict[str, object] = {"system": system.name, "level": system.level,
                                        "site": site.name, "dc": dc}
        base = self.base
        self.project = openstack.identity.Project(
            name, name=f"{system.name}-{site.name}",
            description=f"{system.display_name} / {system.display_name_vi} (level {system.level})",
            tags=tags(base, zone="tenant", dr=str(system.dr).lower()),
            opts=child(self))
        grant = openstack.identity.RoleAssignment(
            f"{name}-operator", project_id=self.project.id, user_id=args.operator_user_id,
            role_id=args.operator_role_id, opts=child(self))
        self.provider = openstack.Provider(
            f"{name}-provider", tenant_id=self.project.id, opts=child(self, depends_on=[grant]))
        in_tenant = child(self, provider=self.provider)
        needs_gateway = bool(args.external_network_id and system.public_ports
                             and Zone.DMZ in args.zones)
        self.router = openstack.networking.Router(
            f"{name}-router", name=f"{system.name}-{site.name}-router",
            tenant_id=self.project.id,
            external_network_id=args.external_network_id if needs_gateway else None,
            tags=tags(base, zone="perimeter"), opts=child(self))
        self.networks: dict[Zone, openstack.networking.Network] = {}
        self.subnets: dict[Zone, openstack.networking.Subnet] = {}
        self.secgroups: dict[Zone, openstack.networking.SecGroup] = {}
        for zone in args.zones:
            zname = f"{name}-{zone.value}"
            ztags = tags(base, zone=zone.value)
            net = openstack.networking.Network(
                f"{zname}-net", name=f"{system.name}-{zone.value}", tenant_id=self.project.id,
                port_security_enabled=True, admin_state_up=True, tags=ztags, opts=child(self))
            cidr = subnet_cidr(args.model, site, system.name, zone)
            first, last = dhcp_pool(cidr)  # .1 this router, the last usable one the VPN router
            sub = openstack.networking.Subnet(
                f"{zname}-subnet", name=f"{system.name}-{zone.value}", network_id=net.id,
                tenant_id=self.project.id, cidr=cidr, ip_version=4, enable_dhcp=True,
                allocation_pools=[openstack.networking.SubnetAllocationPoolArgs(
                    start=first, end=last)],
                tags=ztags, opts=child(self))
            openstack.networking.RouterInterface(
                f"{zname}-rif", router_id=self.router.id, subnet_id=sub.id, opts=child(self))
            # delete_default_rules: no allow-all egress; only declared flows pass (default deny)
            self.secgroups[zone] = openstack.networking.SecGroup(
                f"{zname}-sg", name=f"{system.name}-{zone.value}", tenant_id=self.project.id,
                description=f"{system.name} {zone.value} zone: declared flows only",
                delete_default_rules=True, tags=ztags, opts=child(self))
            self.networks[zone], self.subnets[zone] = net, sub
        # logical names from what the rule is, not its position: a flow added elsewhere in the
        # inventory must not rename (and so replace) the rules of this tenant
        seen: set[str] = set()
        for rule in args.rules:
            rname = (f"{name}-{rule.zone.value}-{rule.direction[:2]}-{rule.protocol}"
                     f"{rule.port}-{rule.remote_cidr.replace('/', '_')}")
            if rname in seen:  # the same rule from two flows: Neutron refuses duplicates
                continue
            seen.add(rname)
            openstack.networking.SecGroupRule(
                rname,
                security_group_id=self.secgroups[rule.zone].id, tenant_id=self.project.id,
                direction=rule.direction, ethertype="IPv4", protocol=rule.protocol,
                port_range_min=rule.port if rule.protocol != "icmp" else None,
                port_range_max=rule.port if rule.protocol != "icmp" else None,
                remote_ip_prefix=rule.remote_cidr,
                description=desc(rule.text, base, zone=rule.zone.value), opts=child(self))
        groups: dict[str, openstack.compute.ServerGroup] = {}
        for host in args.hosts:
            if host.ha_group and host.ha_group not in groups:
                groups[host.ha_group] = openstack.compute.ServerGroup(
                    f"{name}-{host.ha_group}-sg", name=host.ha_group,
                    policies="anti-affinity", opts=in_tenant)
        self.instances: dict[str, openstack.compute.Instance] = {}
        for host in args.hosts:
            zone = _zone(host, self.networks)
            self._server(name, args, host.name, zone, host.flavor, host.volume_gb,
                         _fixed_ip(host, args.model, site, system.name, zone),
                         groups.get(host.ha_group), {"host": host.name, "role": host.role},
                         in_tenant)
        # the planned address Ansible and the audit know the twin by (dcops.inventory.derived)
        planned = {t.unit: t.address for t in twin_hosts(args.model) if t.system == system.name}
        for twin in args.twins:
            self._server(name, args, f"{twin.unit}-standby", twin.zone, twin.flavor,
                         twin.volume_gb, planned.get(twin.unit), None,
                         {"twin": twin.unit, "role": "standby"}, in_tenant,
                         power_state="active" if twin.zone is Zone.DB else "shutoff")
        self.register_outputs({
            "project_id": self.project.id,
            "router_id": self.router.id,
            "network_ids": {z.value: n.id for z, n in self.networks.items()},
            "subnet_ids": {z.value: s.id for z, s in self.subnets.items()},
        })

    def _server(self, name: str, args: SystemTenantArgs, server: str, zone: Zone, flavor: str,
                volume_gb: int, fixed_ip: str | None,
                group: openstack.compute.ServerGroup | None, extra: dict[str, str],
                opts: pulumi.ResourceOptions, power_state: str = "active") -> None:
        meta = {**{k: str(v) for k, v in self.base.items()}, "zone": zone.value, **extra}
        inst = openstack.compute.Instance(
            f"{name}-{server}", name=server, flavor_name=flavor or args.default_flavor,
            image_name=args.image_name, power_state=power_state,
            networks=[openstack.compute.InstanceNetworkArgs(
                uuid=self.networks[zone].id, fixed_ip_v4=fixed_ip)],
            security_groups=[self.secgroups[zone].name],
            scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=group.id)]
            if group is not None else None,
            tags=tags(meta), metadata=meta, opts=opts)
        self.instances[server] = inst
        if volume_gb > 0:
            vol = openstack.blockstorage.Volume(
                f"{name}-{server}-data", name=f"{server}-data", size=volume_gb,
                metadata=meta, opts=opts)
            openstack.compute.VolumeAttach(
                f"{name}-{server}-data-attach", instance_id=inst.id, volume_id=vol.id, opts=opts)


def _zone(host: Host, networks: dict[Zone, openstack.networking.Network]) -> Zone:
    """The host's zone, which its tenant must have (`inventory check` reports it otherwise)."""
    if host.zone is None or host.zone not in networks:
        raise IacInputError(f"host {host.name} is in zone "
                            f"{host.zone.value if host.zone else None!r}, which its tenant lacks "
                            f"(zones: {', '.join(z.value for z in networks)}); run `dcops "
                            "inventory check`", file=host.source.file if host.source else None,
                            line=host.source.line if host.source else None,
                            key=f"{host.name}.dcops_zone")
    return host.zone


def _fixed_ip(host: Host, model: SiteModel, site: Site, system: str, zone: Zone) -> str | None:
    """The inventory address, or None (DHCP) for a host marked `dcops_dhcp: true`; an address
    outside the zone subnet is an error, never a silent DHCP fallback."""
    if host.dhcp:
        return None
    cidr = subnet_cidr(model, site, system, zone)
    problem = host_address_problem(host.address, cidr)
    if problem is not None:
        raise IacInputError(f"host {host.name}: {problem}; run `dcops inventory check`",
                            file=host.source.file if host.source else None,
                            line=host.source.line if host.source else None,
                            key=f"{host.name}.ansible_host")
    return host.address
