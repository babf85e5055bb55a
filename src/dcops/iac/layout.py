"""What goes where: systems and hosts per DC stack, standby twins and the address plan.

The plan itself lives in the inventory layer (dcops.inventory.addressplan) so that `inventory
check` applies the same rules with the same code; this module adds the IaC's error type.
"""

from __future__ import annotations

import os

from dcops.errors import ConfigError
from dcops.inventory.addressplan import (
    MAX_SYSTEMS,
    STACK_KINDS,
    TRANSIT_INDEX,
    ZONE_BLOCK,
    TwinUnit,
    address_plan,
    dhcp_pool,
    host_address_problem,
    hosts_at,
    subnet_cidr,
    systems_at,
    transit_cidr,
    twin_units,
    wan_port_address,
)
from dcops.inventory.planchecks import plan_problems
from dcops.model.site import Site, SiteModel

__all__ = ["MAX_SYSTEMS", "STACK_KINDS", "TRANSIT_INDEX", "ZONE_BLOCK", "IacInputError",
           "TwinUnit", "address_plan", "check_flows", "check_model", "dhcp_pool",
           "host_address_problem", "hosts_at", "stack_site", "subnet_cidr", "systems_at",
           "transit_cidr", "twin_units", "wan_port_address"]


class IacInputError(ConfigError):
    """The site model cannot be turned into infrastructure; names the inventory file and key."""


def stack_site(model: SiteModel, stack: str) -> Site:
    """The site a stack provisions ("primary" or "backup")."""
    if stack not in STACK_KINDS:
        raise IacInputError(f"unknown stack {stack!r}; expected one of {sorted(STACK_KINDS)}")
    sites = model.sites_of(STACK_KINDS[stack])
    if not sites:
        raise IacInputError(f"the inventory has no site of kind {STACK_KINDS[stack].value}",
                            file=model.inventory_dir or None, key="dcops_sites")
    return sites[0]


def check_model(model: SiteModel) -> None:
    """Refuse a model the address plan or placement rules object to (the same rules as
    `inventory check`): IacInputError names the first problem's file, line and key and lists
    every problem. The lab is planned like any province: its DCs declare a `cloud_prefix`
    apart from the lab bridge (a DC without one gets `bad-dc-subnet` naming that key)."""
    problems = plan_problems(model)
    if not problems:
        return
    first = problems[0]
    file, line = (first.source.file, first.source.line) if first.source else (None, None)
    if file is not None and model.inventory_dir and not os.path.isabs(file):
        file = os.path.join(model.inventory_dir, file)
    more = "".join(f"\n  {p.source or model.inventory_dir}: {p.message} (key: {p.key})"
                   for p in problems[1:])
    raise IacInputError(first.message + (f"; {len(problems) - 1} more:{more}" if more else ""),
                        file=file or model.inventory_dir or None, line=line, key=first.key)


#: The former name: flows are one of the rules check_model applies.
check_flows = check_model
