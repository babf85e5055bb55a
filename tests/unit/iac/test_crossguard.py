"""The same policies load into a CrossGuard PolicyPack; validate() is called directly.

PolicyPack() itself starts a blocking gRPC server, so the test builds the policies the pack is
made of (pulumi/policy/pack.py) and calls their validate functions with CrossGuard's own args.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from dcops.iac import POLICIES, Plan, PolicyContext, find_program_dir


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    path = find_program_dir() / "policy" / "pack.py"
    spec = importlib.util.spec_from_file_location("dcops_policy_pack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[])


def _urn(r: Any) -> str:
    return f"urn:pulumi:primary::dcops::{r.type}::{r.name}"


def _resource_args(r: Any) -> ResourceValidationArgs:
    return ResourceValidationArgs(r.type, dict(r.props), _urn(r), r.name, _opts(), None)


def _ids_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [i for v in value for i in _ids_in(v)]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ids_in(v)]
    return []


def _unknown_ids(value: Any, ids: set[str]) -> Any:
    """The value with every resource ID replaced by the engine's unknown-value sentinel."""
    if isinstance(value, str):
        return "04da6b54-80e4-46f7-96ec-b56ff0331ba9" if value in ids else value
    if isinstance(value, list):
        return [_unknown_ids(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _unknown_ids(v, ids) for k, v in value.items()}
    return value


def _stack_args(p: Plan) -> StackValidationArgs:
    """Resources as the engine hands them over: references as property dependencies."""
    made = {r.id: PolicyResource(r.type, dict(r.props), _urn(r), r.name, _opts(), None, None,
                                 [], {}) for r in p.resources}
    for r in p.resources:
        deps = made[r.id].property_dependencies
        for prop, value in r.props.items():
            targets = [made[i] for i in _ids_in(value) if i in made]
            if targets:
                deps[prop] = targets
                made[r.id].dependencies.extend(targets)
    return StackValidationArgs(list(made.values()))


def _run(policies: list[Any], p: Plan) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for policy in policies:
        def report(message: str, urn: str | None = None, _n: str = policy.name) -> None:
            found.append((_n, message))
        if isinstance(policy, ResourceValidationPolicy):
            for r in p.resources:
                policy.validate(_resource_args(r), report)  # type: ignore[operator]
        elif isinstance(policy, StackValidationPolicy):
            policy.validate(_stack_args(p), report)  # type: ignore[operator]
    return found


def test_every_policy_is_in_the_pack(pack: ModuleType) -> None:
    names = {p.name for p in pack.build_policies(PolicyContext())}
    assert {p.name for p in POLICIES} <= names
    assert "zone-default-deny-stack" in names


def test_pack_passes_the_program_and_catches_mutations(pack: ModuleType,
                                                       plans: dict[str, Any]) -> None:
    ctx = PolicyContext.from_model(plans["model"], "backup")
    policies = pack.build_policies(ctx)
    backup: Plan = plans["backup"]
    assert _run(policies, backup) == []
    ike = "wan-backup-dc-ike"
    weak = backup.with_props(ike, pfs="group2")
    assert _run(policies, weak) == [("vpn-crypto", f"{ike}: PFS group2 is weaker than group14")]
    twin = "backup-dc-lgsp-lgsp-app-standby"
    gone = _run(policies, backup.without(twin, f"{twin}-data", f"{twin}-data-attach"))
    assert [n for n, _ in gone] == ["dr-twins"] and "lgsp-app" in gone[0][1]


def test_resource_policy_on_a_single_rule(pack: ModuleType, plans: dict[str, Any]) -> None:
    policy = next(p for p in pack.build_policies(PolicyContext())
                  if p.name == "no-public-ingress")
    primary: Plan = plans["primary"]
    rule = next(r for r in primary.of_type("networking.SecGroupRule")
                if r.zone == "mgmt" or r.props.get("portRangeMin") == 22)
    opened = primary.with_props(rule.name, remoteIpPrefix="0.0.0.0/0",
                                direction="ingress").named(rule.name)
    seen: list[str] = []
    policy.validate(_resource_args(opened), lambda m, urn=None: seen.append(m))
    assert len(seen) == 1 and rule.name in seen[0] and "0.0.0.0/0" in seen[0]


PRODUCTION = find_program_dir().parent / "inventories" / "production"


@pytest.mark.skipif(not PRODUCTION.is_dir(), reason="example inventory not present")
def test_pack_reads_the_inventory_named_by_dcops_inventory(
        pack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcops.iac import plan
    from dcops.inventory import load_inventory

    monkeypatch.setenv("DCOPS_INVENTORY", str(PRODUCTION))
    backup = plan(load_inventory(PRODUCTION), "backup")
    policies = pack.build_policies()  # no fixed context: as under `pulumi preview`
    stack_policies = [p for p in policies if isinstance(p, StackValidationPolicy)]
    assert _run(stack_policies, backup) == []
    twin = "backup-dc-portal-portal-web-standby"
    found = _run(stack_policies, backup.without(twin, f"{twin}-data", f"{twin}-data-attach"))
    assert [n for n, _ in found] == ["dr-twins"] and "portal-web" in found[0][1]


def test_pack_follows_references_through_property_dependencies(
        pack: ModuleType, plans: dict[str, Any]) -> None:
    """Under a preview IDs are unknown; the pack resolves endpoints and routes by URN."""
    policy = next(p for p in pack.build_policies(PolicyContext()) if p.name == "wan-endpoints")
    backup: Plan = plans["backup"]
    args = _stack_args(backup)
    ids = {r.id for r in backup.resources}
    for res in args.resources:  # what a preview shows before anything exists: no IDs
        res.props = _unknown_ids(res.props, ids)
    seen: list[str] = []
    policy.validate(args, lambda m, urn=None: seen.append(m))
    assert seen == []
    eg = next(r for r in args.resources if r.name == "wan-backup-dc-local-dc-eg")
    eg.property_dependencies["endpoints"] = [
        d for d in eg.property_dependencies["endpoints"]
        if d.name != "backup-dc-docmgmt-replication-subnet"]
    policy.validate(args, lambda m, urn=None: seen.append(m))
    assert len(seen) == 1 and seen[0].startswith("backup-dc-docmgmt-replication-subnet: ")
    assert "not a local endpoint of the DC-DC VPN connection" in seen[0]


@pytest.mark.parametrize("broken", ["missing", "malformed"])
def test_pack_fails_closed_when_the_inventory_context_cannot_be_built(
        pack: ModuleType, plans: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any, broken: str) -> None:
    """No silent fallback: every stack policy reports why, so a preview with the pack fails."""
    inventory = tmp_path / "inventory"
    if broken == "malformed":
        (inventory / "group_vars" / "all").mkdir(parents=True)
        (inventory / "hosts.yml").write_text("all:\n  hosts:\n    web1: {ansible_host: [\n")
        (inventory / "group_vars" / "all" / "main.yml").write_text("dcops_sites: 3\n")
    monkeypatch.setenv("DCOPS_INVENTORY", str(inventory))
    policies = [p for p in pack.build_policies() if isinstance(p, StackValidationPolicy)]
    assert policies
    found = _run(policies, plans["backup"])
    assert sorted(n for n, _ in found) == sorted(p.name for p in policies)  # every one fails
    for _, message in found:
        assert message.startswith("policy pack fails closed, stack not checked: cannot build "
                                  f"the inventory context from {inventory} (DCOPS_INVENTORY): ")
        assert "InventoryError" in message
