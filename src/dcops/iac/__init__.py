"""dcops.iac: the Pulumi program run offline under mocks (plan, policies, topology).

Readers (compliance, CLI) use: `plan(model, stack) -> Plan`, `policies.evaluate(plan, ctx)`,
`REQUIRED_ZONES` / `required_zones(level)` and `PolicyContext.from_model(model, stack)`.
"""

from __future__ import annotations

from .layout import IacInputError, TwinUnit, address_plan, check_flows, twin_units
from .plan import Plan, PlannedResource, find_program_dir, plan
from .policies import POLICIES, PolicyViolation, evaluate
from .resources import PolicyContext
from .stackconfig import StackConfig
from .zones import BACKUP_DC_ZONES, REQUIRED_ZONES, WEB_PORTS, required_zones, tenant_zones

__all__ = [
    "BACKUP_DC_ZONES",
    "POLICIES",
    "REQUIRED_ZONES",
    "WEB_PORTS",
    "IacInputError",
    "Plan",
    "PlannedResource",
    "PolicyContext",
    "PolicyViolation",
    "StackConfig",
    "TwinUnit",
    "address_plan",
    "check_flows",
    "evaluate",
    "find_program_dir",
    "plan",
    "required_zones",
    "tenant_zones",
    "twin_units",
]
