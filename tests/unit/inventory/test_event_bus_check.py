"""`dcops inventory check` validates the event bus nodes (group event_bus, role event_bus)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.inventory import check_inventory
from dcops.inventory.ansible_io import Problem
from dcops.inventory.buschecks import BUS_GROUP
from dcops.inventory.examples import ExampleInventoryWarning

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"
GROUP = "    event_bus:\n      hosts:\n        bus1:\n        bus2:\n        bus3:\n"


def _copy(tmp_path: Path) -> Path:
    inv = tmp_path / "production"
    shutil.copytree(PRODUCTION, inv)
    return inv


def _edit(inv: Path, old: str, new: str) -> None:
    hosts = inv / "hosts.yml"
    text = hosts.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in hosts.yml"
    hosts.write_text(text.replace(old, new), encoding="utf-8")


def _line(inv: Path, text: str) -> int:
    lines = (inv / "hosts.yml").read_text(encoding="utf-8").splitlines()
    return lines.index(text) + 1


def _bus_problems(inv: Path) -> list[Problem]:
    with pytest.warns(ExampleInventoryWarning):  # the example province's example secrets
        _, problems = check_inventory(inv)
    return [p for p in problems if p.kind == "event-bus"]


@pytest.mark.parametrize("name", ["production", "lab"])
def test_shipped_inventories_declare_a_valid_bus(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the production example warns about its example secrets
        model, problems = check_inventory(REPO / "inventories" / name)
    assert problems == []
    nodes = [h for h in model.hosts.values() if BUS_GROUP in h.groups]
    assert len(nodes) == 3 and {h.zone.value for h in nodes if h.zone} == {"mgmt"}


def test_an_even_number_of_nodes_is_refused(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    _edit(inv, GROUP, GROUP.replace("        bus3:\n", ""))
    [problem] = _bus_problems(inv)
    assert "2 node(s)" in problem.message and "odd number, at least 3" in problem.message
    assert problem.source is not None and problem.source.file.endswith("hosts.yml")


def test_a_node_outside_the_management_zone_is_refused(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    _edit(inv, "ansible_host: 10.10.44.42\n          dcops_zone: mgmt",
          "ansible_host: 10.10.44.42\n          dcops_zone: app")
    problems = _bus_problems(inv)
    assert [p.key for p in problems] == ["bus2.dcops_zone"]
    assert "zone app: expected mgmt" in problems[0].message
    assert problems[0].source is not None
    assert problems[0].source.line == _line(inv, "          ansible_host: 10.10.44.42") + 1


def test_a_network_device_is_no_bus_node(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    _edit(inv, GROUP, GROUP.replace("        bus3:\n", "        bus3:\n        dc1-core-sw1:\n"
                                    "        dc1-core-sw2:\n"))
    problems = _bus_problems(inv)
    assert sorted(p.key for p in problems) == ["event_bus.dc1-core-sw1", "event_bus.dc1-core-sw2"]
    assert all("is not a server" in p.message for p in problems)


def test_the_cli_names_the_mistake_and_fails(tmp_path: Path) -> None:
    inv = _copy(tmp_path)
    _edit(inv, GROUP, GROUP.replace("        bus3:\n", ""))
    result = CliRunner().invoke(app, ["inventory", "check", "-i", str(inv)], env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert "event-bus" in result.output and "odd number" in result.output
