"""The IaC applies the inventory's own placement rules to a model: no zone fallback, no silent
DHCP, no plan of the lab (which the IaC does not provision)."""

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


def test_the_lab_is_not_planned(model: SiteModel) -> None:
    lab = replace(model, settings=Settings(environment="lab"))
    with pytest.raises(IacInputError, match="not provisioned by the IaC"):
        plan(lab, "primary")
