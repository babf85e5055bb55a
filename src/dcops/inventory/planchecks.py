"""Address-plan and placement rules, one implementation for `inventory check` and the IaC.

Each rule takes the model and, when there is one, what Ansible read (for the exact line of the
offending key); `plan_problems(model)` runs the rules the IaC needs on a model alone, and
`iac.plan` refuses a model they object to, so both commands give one verdict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from dcops.inventory.addressplan import (
    MAX_SYSTEMS,
    dc_sites,
    host_address_problem,
    hosts_at,
    prefix_key,
    site_prefix_problem,
    subnet_cidr,
    system_index,
    systems_at,
    twin_units,
)
from dcops.inventory.ansible_io import Problem, RawInventory, key_position, position
from dcops.inventory.zones import tenant_zones
from dcops.model.site import SiteKind, SiteModel, SourceRef, System

DHCP_VAR = "dcops_dhcp"


class Where:
    """File and line of a key: from what Ansible read when available, else the model's source."""

    def __init__(self, model: SiteModel, raw: RawInventory | None) -> None:
        self.model, self.raw = model, raw
        self.base = None if raw is None else (raw.path if raw.path.is_dir() else raw.path.parent)

    def _global(self, name: str, item: str) -> object:
        table = self.raw.globals.get(name) if self.raw is not None else None
        return table.get(item) if isinstance(table, dict) else None

    def setting(self, name: str) -> SourceRef | None:
        """Where a province-wide variable (group `all`) is set."""
        return key_position(self.raw.globals, name, self.base) if self.raw is not None else None

    def snmp(self, device: str, field: str) -> SourceRef | None:
        """A field of a device's dcops_snmp (often shared in group_vars), else dcops_snmp."""
        spec = self.raw.hostvars.get(device, {}).get("dcops_snmp") if self.raw else None
        if isinstance(spec, dict) and field in spec:
            return key_position(spec, field, self.base)
        return self.host(device, "dcops_snmp")

    def declares(self, host: str, key: str) -> bool:
        """Whether what Ansible read sets `key` for `host` (False without a raw inventory)."""
        return self.raw is not None and key in self.raw.hostvars.get(host, {})

    def declares_site(self, name: str) -> bool:
        """Whether dcops_sites declares `name` (a site dropped for a bad kind is reported there)."""
        sites = self.raw.globals.get("dcops_sites") if self.raw is not None else None
        return isinstance(sites, dict) and name in sites

    def system(self, system: System, key: str | None = None) -> SourceRef | None:
        """A system's declaration, or one of its keys."""
        spec = self._global("dcops_systems", system.name)
        found = key_position(spec, key, self.base) if key else None
        return found or system.source

    def flow(self, system: System, index: int) -> SourceRef | None:
        """One flow of a system (its line in the flows list)."""
        spec = self._global("dcops_systems", system.name)
        flows = spec.get("flows") if isinstance(spec, dict) else None
        if isinstance(flows, list) and index < len(flows):
            return position(flows[index], self.base) or system.source
        return system.source

    def site(self, name: str, key: str) -> SourceRef | None:
        """A site's key (subnets, kind, ...) or the site."""
        spec = self._global("dcops_sites", name)
        site = self.model.sites.get(name)
        return key_position(spec, key, self.base) or (site.source if site else None)

    def host(self, name: str, key: str) -> SourceRef | None:
        """Where a host (or device) variable was written (its key, else its value), else the
        host."""
        hostvars = self.raw.hostvars.get(name, {}) if self.raw is not None else {}
        if key in hostvars:
            found = key_position(hostvars, key, self.base) or position(hostvars[key], self.base)
            if found is not None:
                return found
        host = self.model.hosts.get(name) or self.model.devices.get(name)
        return host.source if host is not None else None


def check_systems(model: SiteModel, where: Where) -> list[Problem]:
    """Each system is hosted at a known site and has a slot in the address plan."""
    out: list[Problem] = []
    for system in model.systems.values():
        key = f"dcops_systems.{system.name}"
        if system.site not in model.sites and not where.declares_site(system.site):
            out.append(Problem("unknown-site", f"system {system.name} is hosted at unknown site "
                               f"{system.site!r}; sites: {', '.join(sorted(model.sites))}",
                               where.system(system, "site"), f"{key}.site"))
        index = system_index(model, system.name)
        if index >= MAX_SYSTEMS:
            out.append(Problem("address-plan-full",
                               f"system {system.name} is number {index + 1}; the address plan "
                               f"holds {MAX_SYSTEMS} systems per DC", where.system(system), key))
    return out


def check_flows(model: SiteModel, where: Where) -> list[Problem]:
    """Every flow names known systems and zones those systems' tenants have."""
    out: list[Problem] = []
    for system in model.systems.values():
        for i, flow in enumerate(system.flows):
            key = f"dcops_systems.{system.name}.flows[{i}]"
            for end, other, zone in (("from", flow.source_system, flow.source_zone),
                                     ("to", flow.dest_system, flow.dest_zone)):
                name = other or system.name
                peer = model.systems.get(name)
                if peer is None:
                    out.append(Problem("unknown-system",
                                       f"flow names unknown system {name!r}; known: "
                                       f"{', '.join(sorted(model.systems))}",
                                       where.flow(system, i), f"{key}.{end}_system"))
                    continue
                zones = tenant_zones(peer, SiteKind.PRIMARY_DC)
                if zone not in zones:
                    out.append(Problem("unknown-zone",
                                       f"flow names zone {zone.value!r} which system {name!r} "
                                       f"does not have; its zones: "
                                       f"{', '.join(z.value for z in zones)}",
                                       where.flow(system, i), f"{key}.{end}"))
    return out


def check_host_placement(model: SiteModel, where: Where) -> list[Problem]:
    """Each server belongs to a system and sits in a zone that system has at its site."""
    out: list[Problem] = []
    groups = sorted(model.systems)
    for host in sorted(model.hosts.values(), key=lambda h: h.name):
        if not host.systems:
            out.append(Problem("no-system",
                               f"host {host.name} is in no information system's group, so no "
                               f"tenant builds it; add it to one of the groups of "
                               f"dcops_systems ({', '.join(groups)})",
                               where.host(host.name, "ansible_host"), f"{host.name}.groups"))
            continue
        if host.zone is None:
            if where.declares(host.name, "dcops_zone"):
                continue  # a zone name the model does not know: one unknown-zone from build
            out.append(Problem("missing-zone", f"host {host.name} has no dcops_zone",
                               host.source, f"{host.name}.dcops_zone"))
            continue
        owner = model.systems[host.systems[0]]
        site = model.sites.get(host.site)
        kind = site.kind if site is not None else SiteKind.PRIMARY_DC
        zones = tenant_zones(owner, kind)
        if host.zone not in zones:
            out.append(Problem("zone-not-in-system",
                               f"host {host.name} is in zone {host.zone.value!r}, which system "
                               f"{owner.name} does not have at {host.site}: its zones are "
                               f"{', '.join(z.value for z in zones)}; add the zone to "
                               f"dcops_systems.{owner.name}.zones or move the host",
                               where.host(host.name, "dcops_zone"), f"{host.name}.dcops_zone"))
    return out


def check_dc_prefixes(model: SiteModel, where: Where) -> list[Problem]:
    """Each DC's plan prefix (cloud_prefix, else its first subnet) is an IPv4 /16 the zone
    subnets are carved from; a cloud prefix is a DC's only and shares no address with any site."""
    out: list[Problem] = []
    dcs = {site.name for site in dc_sites(model).values()}
    for site in dc_sites(model).values():
        field = "cloud_prefix" if site.cloud_prefix else "subnets"
        problem = site_prefix_problem(site)
        if problem is not None:
            out.append(Problem("bad-dc-subnet", problem, where.site(site.name, field),
                               prefix_key(site)))
    for site in model.sites.values():
        if not site.cloud_prefix:
            continue
        key = f"dcops_sites.{site.name}.cloud_prefix"
        if site.name not in dcs:
            out.append(Problem("stray-cloud-prefix",
                               f"site {site.name} ({site.kind.value}) declares cloud_prefix, but "
                               "the IaC only carves the primary and backup DC "
                               f"({', '.join(sorted(dcs)) or 'none'}); remove it",
                               where.site(site.name, "cloud_prefix"), key))
            continue
        try:
            net = ipaddress.ip_network(site.cloud_prefix)
        except ValueError:
            continue  # reported above as bad-dc-subnet
        for other in model.sites.values():
            taken = [c for c in other.subnets if _overlaps(net, c)]
            if (other.name != site.name and other.cloud_prefix
                    and _overlaps(net, other.cloud_prefix)):
                taken.append(f"cloud_prefix {other.cloud_prefix}")
            if taken:
                out.append(Problem("overlapping-cloud-prefix",
                                   f"site {site.name}: cloud_prefix {net} overlaps "
                                   f"{', '.join(taken)} of site {other.name}; the cloud prefix "
                                   "must be separate from every site's LAN and the other DC's "
                                   "prefix (the WAN routes by it)",
                                   where.site(site.name, "cloud_prefix"), key))
    return out


def _overlaps(net: ipaddress.IPv4Network | ipaddress.IPv6Network, cidr: str) -> bool:
    try:
        return net.overlaps(ipaddress.ip_network(cidr))
    except (ValueError, TypeError):  # a bad subnet is reported by its own check
        return False


def check_host_addresses(model: SiteModel, where: Where) -> list[Problem]:
    """A server's address is a host address of its zone subnet, unless it is `dcops_dhcp: true`."""
    out: list[Problem] = []
    for site in dc_sites(model).values():
        if site_prefix_problem(site) is not None:
            continue
        for system in systems_at(model, site):
            if system_index(model, system.name) >= MAX_SYSTEMS:
                continue
            zones = tenant_zones(system, site.kind)
            for host in hosts_at(model, site, system.name):
                if host.dhcp or host.zone is None or host.zone not in zones:
                    continue
                cidr = subnet_cidr(model, site, system.name, host.zone)
                problem = host_address_problem(host.address, cidr)
                if problem is not None:
                    out.append(Problem(
                        "address-outside-zone",
                        f"host {host.name} in {system.name}/{host.zone.value} at {site.name}: "
                        f"{problem}; give it a free address of {cidr} (.2 to "
                        f".{ipaddress.ip_network(cidr).num_addresses - 3}) or mark it "
                        f"`{DHCP_VAR}: true`", where.host(host.name, "ansible_host"),
                        f"{host.name}.ansible_host"))
    return out


def check_twins(model: SiteModel, where: Where) -> list[Problem]:
    """No backup-DC server re-declares a standby twin the IaC already derives from `dr: true`."""
    out: list[Problem] = []
    backup = dc_sites(model).get("backup")
    if backup is None:
        return out
    for unit in twin_units(model):
        primaries = [model.hosts[h] for h in unit.hosts]
        ha_groups = {h.ha_group for h in primaries if h.ha_group}
        roles = {(h.role, h.zone) for h in primaries if h.role}
        for host in hosts_at(model, backup, unit.system):
            if (host.name == f"{unit.unit}-standby" or host.ha_group in ha_groups
                    or (host.role, host.zone) in roles):
                out.append(Problem(
                    "duplicate-twin",
                    f"host {host.name} at {backup.name} duplicates the standby twin of "
                    f"{unit.system}/{unit.unit} that `dr: true` already builds there "
                    f"({unit.unit}-standby); remove it from the inventory, or give it and "
                    f"the primaries one dcops_ha_group to run the unit in both DCs",
                    where.host(host.name, "ansible_host"), f"{host.name}"))
    return out


ModelRule = Callable[[SiteModel, Where], list[Problem]]

#: Rules the IaC cannot build without (run by `inventory check` and by `iac.plan`).
PLAN_RULES: tuple[ModelRule, ...] = (check_systems, check_flows, check_host_placement,
                                     check_dc_prefixes, check_host_addresses, check_twins)


def plan_problems(model: SiteModel, raw: RawInventory | None = None) -> list[Problem]:
    """Every problem the address plan and the placement rules find in the model (the lab too:
    its DCs declare a cloud_prefix apart from the lab bridge, and its hosts `dcops_dhcp`)."""
    where = Where(model, raw)
    return [p for rule in PLAN_RULES for p in rule(model, where)]


def check_plan(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """`inventory check` entry point of the plan rules."""
    return plan_problems(model, raw)
