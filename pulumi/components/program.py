"""The whole program for one stack: the DC it provisions and its side of the WAN."""

from __future__ import annotations

import pulumi

from dcops.iac.layout import check_model, stack_site
from dcops.iac.stackconfig import StackConfig

from .datacentre import DataCentre, DataCentreArgs
from .wan import Wan, WanArgs


def build(cfg: StackConfig) -> tuple[DataCentre, Wan]:
    """Create the DataCentre and Wan of the stack and export their identifiers."""
    check_model(cfg.model)
    site = stack_site(cfg.model, cfg.stack)
    dc = DataCentre(site.name, DataCentreArgs(
        model=cfg.model, site=site, image_name=cfg.image_name,
        default_flavor=cfg.default_flavor, external_network_id=cfg.external_network_id,
        operator_role=cfg.operator_role))
    zone_networks = {(system, zone): (tenant.networks[zone], tenant.subnets[zone])
                     for system, tenant in dc.tenants.items() for zone in tenant.subnets}
    wan = Wan(f"wan-{site.name}", WanArgs(
        model=cfg.model, site=site, external_network_id=cfg.external_network_id,
        psk=cfg.vpn_psk, peer_addresses=dict(cfg.peer_addresses),
        zone_networks=zone_networks))
    pulumi.export("site", site.name)
    pulumi.export("projects", {n: t.project.id for n, t in dc.tenants.items()})
    pulumi.export("vpn_connections", {p: c.id for p, c in wan.connections.items()})
    return dc, wan
