"""dcops.iac.policies wrapped as CrossGuard policies (written once, used by pytest and Pulumi).

Set DCOPS_INVENTORY to the inventory directory so stack checks know the other DC's subnets and
the DR twins to expect (default: ../../inventories/production next to this file). The pack fails
closed: when that inventory cannot be read, every stack policy reports why and the preview fails
(a silent fallback would drop the inventory-aware policies, dr-twins and wan-endpoints).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from dcops.iac.policies import POLICIES, Policy, ResourceCheck, StackCheck
from dcops.iac.resources import PolicyContext
from dcops.iac.tags import tags_of

PACK_NAME = "dcops-openstack"
HERE = Path(__file__).resolve().parent
Report = Callable[..., None]


class View:
    """A CrossGuard resource as the policies see it (type, name, props, tags)."""

    def __init__(self, resource_type: str, name: str, props: Mapping[str, Any],
                 urn: str = "", dependencies: Mapping[str, Any] | None = None) -> None:
        self.type, self.name, self.props, self.urn = resource_type, name, props, urn
        self.tags = tags_of(resource_type, props)
        # property -> URNs of the resources it refers to (IDs are unknown during a preview)
        self.refs = {prop: [d.urn for d in deps] for prop, deps in (dependencies or {}).items()}


class ContextUnavailableError(Exception):
    """The inventory context of the stack policies cannot be built (the preview must fail)."""


def context_for(views: list[View]) -> PolicyContext:
    """Context from the inventory; raises ContextUnavailableError when it cannot be built."""
    stack = "backup" if any(v.tags.get("dc") == "backup" for v in views) else "primary"
    inventory = Path(os.environ.get("DCOPS_INVENTORY", HERE / "../../inventories/production"))
    try:
        from dcops.inventory import load_inventory

        return PolicyContext.from_model(load_inventory(inventory), stack)
    except Exception as exc:  # whatever it is, the preview fails with its reason
        raise ContextUnavailableError(
            f"cannot build the inventory context from {inventory} (DCOPS_INVENTORY): "
            f"{type(exc).__name__}: {exc}") from exc


def _resource_validator(check: ResourceCheck) -> Callable[[ResourceValidationArgs, Report], None]:
    def validate(args: ResourceValidationArgs, report_violation: Report) -> None:
        view = View(args.resource_type, args.name, args.props, args.urn)
        for message in check(view):
            report_violation(f"{args.name}: {message}", None)
    return validate


StackValidator = Callable[[StackValidationArgs, Report], None]


def _stack_validator(check: StackCheck, context: PolicyContext | None) -> StackValidator:
    def validate(args: StackValidationArgs, report_violation: Report) -> None:
        views = [View(r.resource_type, r.name, r.props, r.urn, r.property_dependencies)
                 for r in args.resources]
        try:
            ctx = context if context is not None else context_for(views)
        except ContextUnavailableError as exc:
            report_violation(f"policy pack fails closed, stack not checked: {exc}", None)
            return
        for view, message in check(views, ctx):
            report_violation(f"{view.name}: {message}", getattr(view, "urn", None) or None)
    return validate


def build_policies(context: PolicyContext | None = None) -> list[Any]:
    """One CrossGuard policy per check; `context` fixed for tests, else read per preview."""
    out: list[Any] = []
    for policy in POLICIES:
        out.extend(_wrap(policy, context))
    return out


def _wrap(policy: Policy, context: PolicyContext | None) -> list[Any]:
    made: list[Any] = []
    if policy.resource_check is not None:
        made.append(ResourceValidationPolicy(
            name=policy.name, description=policy.description,
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=_resource_validator(policy.resource_check)))
    if policy.stack_check is not None:
        name = f"{policy.name}-stack" if policy.resource_check is not None else policy.name
        made.append(StackValidationPolicy(
            name=name, description=policy.description,
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=_stack_validator(policy.stack_check, context)))
    return made


def build_pack() -> PolicyPack:
    """Create (and serve) the pack; only call from __main__ under `pulumi preview`."""
    return PolicyPack(name=PACK_NAME, policies=build_policies(),
                      enforcement_level=EnforcementLevel.MANDATORY)
