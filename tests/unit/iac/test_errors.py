"""Bad flows fail with the inventory file and key, not a Pulumi stack trace."""

from __future__ import annotations

from dataclasses import replace

import pytest
from iac_model import SYSTEMS_YML

from dcops.errors import DcopsError
from dcops.iac import IacInputError, plan
from dcops.model.site import Flow, SiteModel, Zone


def _with_flow(model: SiteModel, system: str, flow: Flow) -> SiteModel:
    sys_ = model.systems[system]
    return replace(model, systems={**model.systems,
                                   system: replace(sys_, flows=(*sys_.flows, flow))})


def test_unknown_system_names_file_line_and_key(model: SiteModel) -> None:
    bad = _with_flow(model, "docmgmt", Flow(Zone.APP, Zone.APP, 443, dest_system="lgps"))
    with pytest.raises(IacInputError) as err:
        plan(bad, "primary")
    assert isinstance(err.value, DcopsError)
    assert err.value.file == f"inventories/test/{SYSTEMS_YML}" and err.value.line == 30
    assert err.value.key == "dcops_systems.docmgmt.flows[3].to_system"
    assert "'lgps'" in str(err.value) and "Traceback" not in str(err.value)


def test_zone_the_system_lacks_names_the_key(model: SiteModel) -> None:
    bad = _with_flow(model, "lgsp", Flow(Zone.DEVMGMT, Zone.APP, 22))
    with pytest.raises(IacInputError) as err:
        plan(bad, "backup")
    assert err.value.key == "dcops_systems.lgsp.flows[4].from"
    assert "'devmgmt'" in str(err.value) and SYSTEMS_YML in str(err.value)


def test_unknown_stack_is_a_clear_error(model: SiteModel) -> None:
    with pytest.raises(IacInputError, match="unknown stack 'tertiary'"):
        plan(model, "tertiary")
