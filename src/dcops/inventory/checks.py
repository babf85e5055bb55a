"""Semantic checks of the site model: references, levels, SNMP security, addresses, DC distance."""

from __future__ import annotations

import warnings
from collections import defaultdict

from dcops.inventory import examples
from dcops.inventory.ansible_io import Problem, RawInventory
from dcops.inventory.build import declared_sites, system_groups
from dcops.inventory.buschecks import check_event_bus
from dcops.inventory.communechecks import check_communes
from dcops.inventory.planchecks import Where, check_plan
from dcops.inventory.sitechecks import (
    check_devices,
    check_dr_levels,
    check_host_variables,
    check_routers,
    check_site_subnets,
)
from dcops.model import SiteKind, SiteModel, SourceRef


def check_references(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Every parent site and system group named must exist (hosts: see build; systems' sites
    and flows: planchecks, shared with the IaC)."""
    out: list[Problem] = []
    at = Where(model, raw)
    declared = declared_sites(raw)  # a site dropped for a bad kind is reported at its kind
    for site in model.sites.values():
        if site.parent is not None and site.parent not in declared:
            out.append(Problem("unknown-site",
                               f"site {site.name} names unknown parent site {site.parent!r}",
                               at.site(site.name, "parent"), f"dcops_sites.{site.name}.parent"))
    groups = system_groups(raw)
    for system in model.systems.values():
        key = f"dcops_systems.{system.name}"
        group, where = groups.get(system.name, (system.name, system.source))
        if group not in raw.groups:
            out.append(Problem("unknown-group",
                               f"system {system.name} names group {group!r}, which the inventory "
                               "does not define", where, f"{key}.group"))
    return out


def check_snmp(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Devices need SNMP credentials: v3 authPriv, v1/v2c only where the inventory is the lab."""
    at = Where(model, raw)
    out: list[Problem] = []
    lab = model.settings.environment == "lab"
    if model.settings.allow_snmp_v2c and not lab:
        out.append(Problem("insecure-snmp", "dcops_allow_snmp_v2c is only allowed in the lab "
                           f"(dcops_environment is {model.settings.environment!r})",
                           at.setting("dcops_allow_snmp_v2c"), "dcops_allow_snmp_v2c"))
    for device in model.devices.values():
        snmp = device.snmp
        key = f"{device.name}.dcops_snmp"

        def field(name: str, device: str = device.name) -> SourceRef | None:
            """The SNMP field's line (a host's dcops_snmp_<name> overrides the shared one)."""
            own = f"dcops_snmp_{name}"
            return at.host(device, own) if at.declares(device, own) else at.snmp(device, name)
        if snmp is None:
            out.append(Problem("missing-snmp", f"device {device.name} has no SNMP credentials",
                               device.source, key))
            continue
        if snmp.version == "3":
            missing = [f for f, v in (("user", snmp.user), ("auth_protocol", snmp.auth_protocol),
                                      ("auth_key", snmp.auth_key),
                                      ("priv_protocol", snmp.priv_protocol),
                                      ("priv_key", snmp.priv_key)) if not v]
            if missing:
                out.append(Problem("missing-snmp",
                                   f"device {device.name}: SNMPv3 authPriv needs "
                                   f"{', '.join(missing)}", at.host(device.name, "dcops_snmp"),
                                   key))
        elif snmp.version in ("1", "2c"):
            if not (lab and model.settings.allow_snmp_v2c):
                out.append(Problem("insecure-snmp",
                                   f"device {device.name} uses SNMP v{snmp.version} outside the "
                                   "lab: use v3 authPriv", field("version"), f"{key}.version"))
            elif snmp.community is None:
                out.append(Problem("missing-snmp", f"device {device.name}: SNMP v{snmp.version} "
                                   "needs a community", at.host(device.name, "dcops_snmp"),
                                   f"{key}.community"))
        else:
            out.append(Problem("insecure-snmp",
                               f"device {device.name}: unknown SNMP version {snmp.version!r} "
                               "(expected 3)", field("version"), f"{key}.version"))
    return out


def check_addresses(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """No two hosts or devices share an address (devices: address and SNMP port)."""
    del raw
    seen: dict[tuple[str, int], list[tuple[str, SourceRef | None]]] = defaultdict(list)
    for host in model.hosts.values():
        seen[(host.address, 0)].append((host.name, host.source))
    for device in model.devices.values():
        port = device.snmp.port if device.snmp is not None else 161
        seen[(device.address, port)].append((device.name, device.source))
        if port == 161 and (device.address, 0) in seen:
            seen[(device.address, 0)].append((device.name, device.source))
    out = []
    for (address, port), owners in sorted(seen.items()):
        if len(owners) > 1:
            names = ", ".join(n for n, _ in owners)
            label = f"{address}:{port}" if port else address
            for name, where in owners[1:]:
                out.append(Problem("duplicate-address",
                                   f"address {label} is used by {names}", where,
                                   f"{name}.ansible_host"))
    return out


def check_dc_distance(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """A primary and a backup DC exist, with locations, at least the configured distance apart."""
    out: list[Problem] = []
    primaries = model.sites_of(SiteKind.PRIMARY_DC)
    backups = model.sites_of(SiteKind.BACKUP_DC)
    if model.settings.environment == "lab" and not (primaries and backups):
        return out
    if not primaries or not backups:
        out.append(Problem("missing-dc", "the inventory needs a primary_dc and a backup_dc site",
                           None, "dcops_sites"))
        return out
    minimum = model.settings.min_dc_distance_km
    for primary in primaries:
        for backup in backups:
            if primary.location is None or backup.location is None:
                site = backup if backup.location is None else primary
                out.append(Problem("bad-location", f"site {site.name} has no location",
                                   Where(model, raw).site(site.name, "location"),
                                   f"dcops_sites.{site.name}.location"))
                continue
            km = primary.location.distance_km(backup.location)
            if km < minimum:
                out.append(Problem("dc-too-close",
                                   f"backup DC {backup.name} is {km:.1f} km from {primary.name}; "
                                   f"at least {minimum:g} km required (dcops_min_dc_distance_km)",
                                   Where(model, raw).site(backup.name, "location"),
                                   f"dcops_sites.{backup.name}.location"))
    return out


def check_example_secrets(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """No committed example or lab secret outside an example inventory (lab secrets: the lab).

    An inventory that declares itself an example passes, but every command warns loudly and
    names the example secrets it found.
    """
    del model
    found = examples.scan(raw)
    if raw.example:
        warnings.warn(examples.ExampleInventoryWarning(
            examples.banner(raw.path, found, examples.example_source(raw))), stacklevel=2)
    return [Problem("example-secret", examples.example_problem_message(f), f.source, f.key)
            for f in found if not examples.allowed(raw, f)]


CHECKS = (check_references, check_plan, check_site_subnets, check_communes, check_routers,
          check_devices, check_dr_levels, check_host_variables, check_snmp, check_addresses,
          check_dc_distance, check_example_secrets, check_event_bus)
