"""One verdict: each mistake in a copy of the example inventory is an error of `inventory check`
AND `iac plan`, naming the file and line of the offending key, and both exit non-zero."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.inventory import check_inventory, load_inventory
from dcops.inventory.planchecks import plan_problems

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file; the 1-based line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def _devmgmt(inv: Path) -> tuple[str, int]:
    old = "        portal-db1:\n          ansible_host: 10.10.31.21\n          dcops_zone: db\n"
    return "hosts.yml", 2 + edit(inv / "hosts.yml", old, old.replace("zone: db", "zone: devmgmt"))


def _outside_zone(inv: Path) -> tuple[str, int]:
    return "hosts.yml", edit(inv / "hosts.yml", "ansible_host: 10.10.11.21",
                             "ansible_host: 10.10.10.21")


def _dr_false(inv: Path) -> tuple[str, int]:
    return "group_vars/all/systems.yml", edit(inv / "group_vars/all/systems.yml",
                                              "    dr: true\n", "    dr: false\n")


def _left_out_of_group(inv: Path) -> tuple[str, int]:
    hosts = inv / "hosts.yml"
    edit(hosts, "    docmgmt:\n      hosts:\n        docmgmt-app1:\n",
         "    docmgmt:\n      hosts:\n")
    text = hosts.read_text(encoding="utf-8")
    return "hosts.yml", text[: text.index("        docmgmt-app1:\n")].count("\n") + 2


def _twin_by_hand(inv: Path) -> tuple[str, int]:
    hosts = inv / "hosts.yml"
    line = edit(hosts, "    backup_servers:\n      hosts:\n",
                "    backup_servers:\n      hosts:\n        portal-db1-standby:\n"
                "          ansible_host: 10.11.31.21\n          dcops_zone: db\n"
                "          dcops_role: db\n")
    edit(hosts, "    portal:\n      hosts:\n",
         "    portal:\n      hosts:\n        portal-db1-standby:\n")
    return "hosts.yml", line + 3


def _device_class_typo(inv: Path) -> tuple[str, int]:
    return "group_vars/commune_network.yml", edit(inv / "group_vars/commune_network.yml",
                                                  "dcops_device_class: commune_router",
                                                  "dcops_device_class: comune_router")


def _snmp_profile_typo(inv: Path) -> tuple[str, int]:
    return "hosts.yml", edit(inv / "hosts.yml", "dcops_snmp_profile: fortigate",
                             "dcops_snmp_profile: fortigat")


def _router_outside_site(inv: Path) -> tuple[str, int]:
    return "hosts.yml", edit(inv / "hosts.yml", "ansible_host: 10.21.3.1",
                             "ansible_host: 10.21.30.1")


def _overlapping_communes(inv: Path) -> tuple[str, int]:
    return "group_vars/all/sites.yml", edit(inv / "group_vars/all/sites.yml",
                                            "subnets: [10.21.2.0/26]", "subnets: [10.21.1.0/27]")


MISTAKES: dict[str, tuple[Callable[[Path], tuple[str, int]], str, str]] = {
    # name: (mutation, problem kind, words of the message)
    "host-zone-its-system-lacks": (_devmgmt, "zone-not-in-system", "'devmgmt'"),
    "address-outside-zone": (_outside_zone, "address-outside-zone", "10.10.11.0/24"),
    "dr-false-at-level-3": (_dr_false, "dr-required", "lgsp is level 3"),
    "host-left-out-of-its-group": (_left_out_of_group, "no-system", "docmgmt-app1"),
    "twin-declared-by-hand": (_twin_by_hand, "duplicate-twin", "portal-db1-standby"),
    "device-class-typo": (_device_class_typo, "unknown-device-class", "'commune_router'"),
    "snmp-profile-typo": (_snmp_profile_typo, "unknown-snmp-profile", "'fortigate'"),
    "router-outside-site-subnet": (_router_outside_site, "router-outside-site", "10.21.3.0/26"),
    "overlapping-commune-subnets": (_overlapping_communes, "overlapping-subnets", "10.21.1.0/26"),
}


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "production"
    shutil.copytree(PRODUCTION, target)
    return target


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistake_is_an_error_of_both_commands_with_file_and_line(inventory: Path,
                                                                  mistake: str) -> None:
    mutate, kind, words = MISTAKES[mistake]
    file, line = mutate(inventory)
    runner = CliRunner()

    check = runner.invoke(app, ["inventory", "check", "-i", str(inventory), "--json"])
    assert check.exit_code == 1, check.output
    found = [p for p in json.loads(check.stdout) if p["kind"] == kind]
    assert found, check.stdout
    assert (found[0]["file"], found[0]["line"]) == (file, line), found
    assert words in found[0]["message"]

    plan = runner.invoke(app, ["iac", "plan", "-i", str(inventory), "--no-svg", "--json"])
    assert plan.exit_code != 0
    assert plan.stdout.strip() == ""  # nothing planned from a wrong inventory
    message = str(plan.exception)
    assert f"{file}:{line}: " in message and words in message


def test_dhcp_marks_an_address_the_plan_does_not_fix(inventory: Path) -> None:
    old = "          ansible_host: 10.10.11.21\n"
    edit(inventory / "hosts.yml", old, "          ansible_host: 10.10.10.21\n"
         "          dcops_dhcp: true\n")
    model, problems = check_inventory(inventory)
    assert problems == [] and model.hosts["portal-web1"].dhcp
    line = edit(inventory / "hosts.yml", "          dcops_dhcp: true\n", "          dhcp: true\n")
    _, problems = check_inventory(inventory)
    kinds = {p.kind: p for p in problems}
    assert {"unknown-variable", "address-outside-zone"} <= set(kinds)
    assert "dcops_dhcp" in kinds["unknown-variable"].message
    assert kinds["address-outside-zone"].source is not None
    assert kinds["address-outside-zone"].source.line == line - 1


def test_examples_fit_their_address_plan() -> None:
    model = load_inventory(PRODUCTION)
    assert plan_problems(model) == []
    assert all(not h.dhcp for h in model.hosts.values())  # every address is a fixed IP
    _, lab_problems = check_inventory(REPO / "inventories" / "lab")
    assert lab_problems == []
