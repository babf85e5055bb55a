"""What the IaC policies look at: the OpenStack resource types they check, the view a policy has
of a resource, and the context a stack cannot tell (one module, imported by `policies` and
`wanpolicy`, so neither imports the other's types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcops.model.site import SiteModel

from .layout import address_plan, twin_units

RULE = "openstack:networking/secGroupRule:SecGroupRule"
SECGROUP = "openstack:networking/secGroup:SecGroup"
NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
PORT = "openstack:networking/port:Port"
RIF = "openstack:networking/routerInterface:RouterInterface"
ROUTE = "openstack:networking/subnetRoute:SubnetRoute"
PROJECT = "openstack:identity/project:Project"
INSTANCE = "openstack:compute/instance:Instance"
IKE = "openstack:vpnaas/ikePolicy:IkePolicy"
IPSEC = "openstack:vpnaas/ipSecPolicy:IpSecPolicy"
SERVICE = "openstack:vpnaas/service:Service"
ENDPOINT_GROUP = "openstack:vpnaas/endpointGroup:EndpointGroup"
CONNECTION = "openstack:vpnaas/siteConnection:SiteConnection"


class ResourceView(Protocol):
    """What a policy sees of a resource (a PlannedResource or a CrossGuard resource)."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def props(self) -> Mapping[str, Any]: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class PolicyContext:
    """What a stack's own resources cannot tell: subnets of the other DC, expected DR twins."""

    cidr_zones: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    expected_twins: frozenset[tuple[str, str]] | None = None  # (system, unit); None = skip

    @classmethod
    def from_model(cls, model: SiteModel, stack: str) -> PolicyContext:
        """Context from the site model: every zone subnet; twins when checking the backup DC."""
        cidrs = {c: (system, zone) for c, (_, system, zone) in address_plan(model).items()}
        twins = (frozenset((t.system, t.unit) for t in twin_units(model))
                 if stack == "backup" else None)
        return cls(cidr_zones=cidrs, expected_twins=twins)


Finding = tuple[ResourceView, str]
