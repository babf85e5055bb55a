"""Policies pass on the program's output and catch each mutation, naming policy and resource."""

from __future__ import annotations

from typing import Any

import pytest

from dcops.iac import Plan, PolicyContext, PolicyViolation, evaluate


def _check(plans: dict[str, Any], stack: str, mutated: Plan) -> list[PolicyViolation]:
    return evaluate(mutated, PolicyContext.from_model(plans["model"], stack))


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_program_output_is_compliant(plans: dict[str, Any], stack: str) -> None:
    assert _check(plans, stack, plans[stack]) == []


def _rule(p: Plan, system: str, zone: str, port: int) -> str:
    for r in p.of_type("networking.SecGroupRule"):
        if (r.system, r.zone, r.props.get("portRangeMin"), r.props["direction"]) == (
                system, zone, port, "ingress"):
            return r.name
    raise AssertionError(f"no rule {system}/{zone}/{port}")


def test_ssh_open_to_the_internet_fails_two_policies(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    name = _rule(p, "lgsp", "app", 22)
    found = _check(plans, "primary", p.with_props(name, remoteIpPrefix="0.0.0.0/0"))
    assert {(v.policy, v.resource) for v in found} == {
        ("no-public-ingress", name), ("ssh-from-mgmt-only", name)}
    assert "0.0.0.0/0" in str(found[0]) and name in str(found[0])


def test_ssh_from_the_app_zone_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    name = _rule(p, "lgsp", "db", 22)
    found = _check(plans, "primary", p.with_props(name, remoteIpPrefix="10.10.20.0/24"))
    assert [(v.policy, v.resource) for v in found] == [("ssh-from-mgmt-only", name)]
    assert "zone 'app'" in found[0].message


def test_db_reachable_from_dmz_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    name = _rule(p, "lgsp", "db", 5432)
    found = _check(plans, "primary", p.with_props(name, remoteIpPrefix="10.10.10.0/24"))
    assert [(v.policy, v.resource) for v in found] == [("db-from-app-only", name)]


def test_dropping_a_zones_default_deny_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    sg = "primary-dc-lgsp-db-sg"
    rules = [r.name for r in p.of_type("networking.SecGroupRule")
             if r.props["securityGroupId"] == p.named(sg).id]
    found = _check(plans, "primary", p.without(sg, *rules))
    assert [(v.policy, v.resource) for v in found] == [
        ("zone-default-deny", "primary-dc-lgsp-db-net")]
    found = _check(plans, "primary", p.with_props(sg, deleteDefaultRules=False))
    assert [(v.policy, v.resource) for v in found] == [("zone-default-deny", sg)]
    found = _check(plans, "primary", p.with_props("primary-dc-lgsp-app-net",
                                                  portSecurityEnabled=False))
    assert [(v.policy, v.resource) for v in found] == [
        ("zone-default-deny", "primary-dc-lgsp-app-net")]


def test_an_allow_all_rule_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    name = _rule(p, "lgsp", "app", 443)
    found = _check(plans, "primary", p.with_props(name, portRangeMin=1, portRangeMax=65535))
    assert ("zone-default-deny", name) not in {(v.policy, v.resource) for v in found}
    found = _check(plans, "primary", p.with_props(name, protocol=None))
    assert ("zone-default-deny", name) in {(v.policy, v.resource) for v in found}


@pytest.mark.parametrize(("prop", "weak", "word"), [
    ("encryptionAlgorithm", "aes-128", "aes-256"),
    ("authAlgorithm", "sha1", "sha256"),
    ("pfs", "group5", "group14"),
])
def test_weakened_vpn_fails(plans: dict[str, Any], prop: str, weak: str, word: str) -> None:
    p: Plan = plans["primary"]
    for name in ("wan-primary-dc-ike", "wan-primary-dc-ipsec"):
        found = _check(plans, "primary", p.with_props(name, **{prop: weak}))
        assert [(v.policy, v.resource) for v in found] == [("vpn-crypto", name)]
        assert weak in found[0].message and word in found[0].message


def test_vpn_defaults_are_weak(plans: dict[str, Any]) -> None:
    p: Plan = plans["backup"]
    found = _check(plans, "backup", p.with_props("wan-backup-dc-ike", pfs=None))
    assert [v.policy for v in found] == ["vpn-crypto"]


def test_removing_a_dr_twin_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["backup"]
    twin = "backup-dc-lgsp-lgsp-db1-standby"
    found = _check(plans, "backup", p.without(twin, f"{twin}-data", f"{twin}-data-attach"))
    assert [v.policy for v in found] == ["dr-twins"]
    assert "'lgsp-db1'" in found[0].message and "lgsp" in found[0].message


def test_missing_zone_for_level_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    zone = "primary-dc-lgsp-mgmt"
    rules = [r.name for r in p.of_type("networking.SecGroupRule")
             if r.props["securityGroupId"] == p.named(f"{zone}-sg").id]
    found = _check(plans, "primary", p.without(f"{zone}-net", f"{zone}-subnet", f"{zone}-sg",
                                               f"{zone}-rif", *rules))
    names = {(v.policy, v.resource) for v in found}
    assert ("zones-per-level", "primary-dc-lgsp") in names
    assert any("mgmt" in v.message for v in found if v.policy == "zones-per-level")


def test_untagged_resource_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["primary"]
    found = _check(plans, "primary", p.with_props("primary-dc-lgsp-dmz-net", tags=["site=x"]))
    # tags are read from the properties, so the plan's derived tags no longer hide the loss
    assert ("required-tags", "primary-dc-lgsp-dmz-net") in {(v.policy, v.resource)
                                                            for v in found}


def test_missing_replication_zone_in_backup_fails(plans: dict[str, Any]) -> None:
    p: Plan = plans["backup"]
    zone = "backup-dc-docmgmt-replication"
    rules = [r.name for r in p.of_type("networking.SecGroupRule")
             if r.props["securityGroupId"] == p.named(f"{zone}-sg").id]
    found = _check(plans, "backup", p.without(f"{zone}-net", f"{zone}-subnet", f"{zone}-sg",
                                              f"{zone}-rif", *rules))
    assert [(v.policy, v.resource) for v in found] == [("zones-per-level", "backup-dc-docmgmt")]
    assert "replication" in found[0].message
