"""DataCentre: every information system hosted (or mirrored) in one DC, one tenant each."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from dcops.iac.flows import rules_for
from dcops.iac.layout import hosts_at, systems_at, twin_units
from dcops.iac.zones import tenant_zones
from dcops.model.site import Site, SiteKind, SiteModel

from .common import child
from .tenant import SystemTenant, SystemTenantArgs


@dataclass
class DataCentreArgs:
    """Inputs of a DataCentre: the model, which site, images and the external network."""

    model: SiteModel
    site: Site
    image_name: str = "debian-12-generic-amd64"
    default_flavor: str = "m1.medium"
    external_network_id: pulumi.Input[str] = ""
    operator_role: str = "member"


class DataCentre(pulumi.ComponentResource):
    """The primary DC, or the backup DC that mirrors every system marked for DR."""

    def __init__(self, name: str, args: DataCentreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dcops:dc:DataCentre", name, None, opts)
        model, site = args.model, args.site
        twins = twin_units(model) if site.kind is SiteKind.BACKUP_DC else []
        # the account running Pulumi gets a role in each project it creates, so that the
        # per-project provider can create servers and volumes there
        operator = openstack.identity.get_auth_scope_output(name="dcops").user_id
        role = openstack.identity.get_role_output(name=args.operator_role).id
        self.tenants: dict[str, SystemTenant] = {}
        for system in systems_at(model, site):
            self.tenants[system.name] = SystemTenant(
                f"{site.name}-{system.name}",
                SystemTenantArgs(
                    model=model, site=site, system=system,
                    zones=tenant_zones(system, site.kind),
                    rules=rules_for(model, site, system),
                    hosts=hosts_at(model, site, system.name),
                    twins=[t for t in twins if t.system == system.name],
                    image_name=args.image_name, default_flavor=args.default_flavor,
                    external_network_id=args.external_network_id,
                    operator_user_id=operator, operator_role_id=role),
                opts=child(self))
        self.register_outputs({
            "projects": {n: t.project.id for n, t in self.tenants.items()},
        })
