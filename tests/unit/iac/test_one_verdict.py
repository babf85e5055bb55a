"""The IaC applies the inventory's own placement rules to a model: no zone fallback, no silent
DHCP, and a DC without a /16 to carve zones from is refused naming the key to add."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dcops.iac import IacInputError, plan
from dcops.inventory.planchecks import plan_problems
from dcops.model.site import Settings, SiteModel, SourceRef, Zone


def _host(model: SiteModel, name: str, **changes: object) -> SiteModel:
    return replace(model, hosts={**model.hosts, name: replace(model.hosts[name], **changes)})


def test_a_zone_the_system_lacks_is_an_error_not_the_dmz(model: SiteModel) -> None:
    where = SourceRef("hosts.yml", 42)
    bad = _host(model, "lgsp-db1", zone=Zone.DEVMGMT, source=where)
    assert [p.kind for p in plan_problems(bad)] == ["zone-not-in-system"]
    with pytest.raises(IacInputError) as err:
        plan(bad, "primary")
    assert err.value.key == "lgsp-db1.dcops_zone" and err.value.line == 42
    assert err.value.file == "inventories/test/hosts.yml" and "'devmgmt'" in str(err.value)


def test_a_host_without_zone_or_system_is_an_error(model: SiteModel) -> None:
    kinds = {p.kind for p in plan_problems(_host(model, "lgsp-app1", zone=None))}
    assert kinds == {"missing-zone"}
    kinds = {p.kind for p in plan_problems(_host(model, "lgsp-app1", systems=()))}
    assert kinds == {"no-system"}
    with pytest.raises(IacInputError, match="no information system"):
        plan(_host(model, "lgsp-app1", systems=()), "backup")


def test_every_problem_is_listed_in_the_error(model: SiteModel) -> None:
    bad = _host(_host(model, "lgsp-db1", zone=Zone.DEVMGMT), "bastion1", address="10.10.40.9")
    with pytest.raises(IacInputError) as err:
        plan(bad, "primary")
    assert "1 more" in str(err.value) and "bastion1" in str(err.value)


def test_a_dc_without_a_prefix_names_cloud_prefix_in_both_commands(model: SiteModel) -> None:
    """A lab-like DC (a /24 LAN, no cloud_prefix): one verdict, naming the key to add."""
    primary = replace(model.sites["primary-dc"], subnets=("10.77.0.0/24",))
    lab = replace(model, settings=Settings(environment="lab"),
                  sites={**model.sites, "primary-dc": primary})
    problems = plan_problems(lab)
    assert [(p.kind, p.key) for p in problems] == [
        ("bad-dc-subnet", "dcops_sites.primary-dc.subnets")]
    assert "declare dcops_sites.primary-dc.cloud_prefix" in problems[0].message
    with pytest.raises(IacInputError, match=r"dcops_sites\.primary-dc\.cloud_prefix") as err:
        plan(lab, "primary")
    assert err.value.key == "dcops_sites.primary-dc.subnets"
