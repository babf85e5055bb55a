"""Every inventory mistake of issue 17 item 4 (and every placement and address-plan rule the IaC
enforces) is an error of `dcops inventory check` AND `dcops iac plan`, at the file and line of the
offending key, and both commands exit non-zero.

Each mutation edits one line of a copy of inventories/production, chosen from what Ansible read
(the key's own line), never from fixed site names or addresses: the example province grows.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.inventory import check_inventory
from dcops.inventory.addressplan import MAX_SYSTEMS, dc_sites, subnet_cidr
from dcops.inventory.ansible_io import RawInventory, read
from dcops.inventory.zones import tenant_zones
from dcops.model import SiteKind, SiteModel, Zone

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"


@dataclass
class Inv:
    """A copy of the example inventory, what Ansible read of it and its model."""

    path: Path
    raw: RawInventory
    model: SiteModel

    def where(self, mapping: object, key: str) -> tuple[str, int]:
        """File (relative to the inventory) and 1-based line of `key` in a loaded mapping."""
        assert isinstance(mapping, dict) and key in mapping, f"{key!r} not in {mapping!r}"
        found = next(k for k in mapping if k == key)
        pos = getattr(found, "ansible_pos", None)
        assert pos, f"no position for {key!r}"
        return str(Path(pos[0]).resolve().relative_to(self.path.resolve())), int(pos[1])

    def host_key(self, host: str, key: str) -> tuple[str, int]:
        return self.where(self.raw.hostvars[host], key)

    def spec(self, table: str, name: str) -> dict[str, Any]:
        spec = self.raw.globals[table][name]
        assert isinstance(spec, dict)
        return spec

    def replace(self, at: tuple[str, int], old: str, new: str) -> tuple[str, int]:
        """Replace `old` on line `at`; returns `at`."""
        lines = self._lines(at[0])
        assert old in lines[at[1] - 1], f"{old!r} not on {at}: {lines[at[1] - 1]!r}"
        lines[at[1] - 1] = lines[at[1] - 1].replace(old, new, 1)
        self._write(at[0], lines)
        return at

    def insert_after(self, at: tuple[str, int], text: str) -> tuple[str, int]:
        """Insert `text` as a line after `at`, indented like it; returns the new line."""
        lines = self._lines(at[0])
        line = lines[at[1] - 1]
        indent = line[: len(line) - len(line.lstrip())]
        lines.insert(at[1], indent + text + "\n")
        self._write(at[0], lines)
        return at[0], at[1] + 1

    def delete(self, at: tuple[str, int]) -> str:
        lines = self._lines(at[0])
        removed = lines.pop(at[1] - 1)
        self._write(at[0], lines)
        return removed

    def line_of(self, file: str, text: str, after: int = 0) -> int:
        """1-based line of the first line after line `after` that is `text` once stripped."""
        for number, line in enumerate(self._lines(file)[after:], start=after + 1):
            if line.strip() == text:
                return number
        raise AssertionError(f"{text!r} not in {file} after line {after}")

    def block(self, file: str, name: str) -> int:
        """1-based line of the mapping key `name:` that opens a block (not a bare list entry)."""
        lines = self._lines(file)
        for number, line in enumerate(lines[:-1], start=1):
            after = lines[number]
            if line.strip() == f"{name}:" and (
                    len(after) - len(after.lstrip()) > len(line) - len(line.lstrip())):
                return number
        raise AssertionError(f"no block {name!r} in {file}")

    def _lines(self, file: str) -> list[str]:
        return (self.path / file).read_text(encoding="utf-8").splitlines(keepends=True)

    def _write(self, file: str, lines: list[str]) -> None:
        (self.path / file).write_text("".join(lines), encoding="utf-8")


@dataclass
class Expect:
    file: str
    line: int
    kind: str
    words: str
    alone: bool = False  # the only problem: one mistake, one clear error


def _system_host(inv: Inv, preferred: str, zone: Zone | None = None) -> str:
    """`preferred` if the model has it, else a primary-DC server of a level 3 system."""
    if preferred in inv.model.hosts:
        return preferred
    primary = dc_sites(inv.model)["primary"].name
    return next(h.name for h in sorted(inv.model.hosts.values(), key=lambda h: h.name)
                if h.site == primary and h.systems and (zone is None or h.zone is zone)
                and inv.model.systems[h.systems[0]].level >= 3)


def _zone_the_system_lacks(inv: Inv) -> Expect:
    host = inv.model.hosts[_system_host(inv, "portal-db1", Zone.DB)]
    system = inv.model.systems[host.systems[0]]
    lacks = next(z for z in Zone if z not in tenant_zones(system, SiteKind.PRIMARY_DC))
    assert host.zone is not None
    at = inv.replace(inv.host_key(host.name, "dcops_zone"), f": {host.zone.value}",
                     f": {lacks.value}")
    return Expect(*at, "zone-not-in-system", f"'{lacks.value}'", alone=True)


def _zone_typo(inv: Inv) -> Expect:
    host = inv.model.hosts[_system_host(inv, "portal-db1", Zone.DB)]
    assert host.zone is not None
    at = inv.replace(inv.host_key(host.name, "dcops_zone"), f": {host.zone.value}",
                     f": {host.zone.value}b")
    return Expect(*at, "unknown-zone", f"'{host.zone.value}b'", alone=True)


def _zone_missing(inv: Inv) -> Expect:
    host = _system_host(inv, "portal-db1", Zone.DB)
    inv.delete(inv.host_key(host, "dcops_zone"))
    file, line = inv.host_key(host, "ansible_host")
    return Expect(file, line, "missing-zone", host, alone=True)


def _address_outside_zone(inv: Inv) -> Expect:
    host = inv.model.hosts[_system_host(inv, "portal-web1", Zone.DMZ)]
    assert host.zone is not None
    cidr = subnet_cidr(inv.model, inv.model.sites[host.site], host.systems[0], host.zone)
    outside = ipaddress.ip_network(cidr).network_address + 256 * 40 + 250
    at = inv.replace(inv.host_key(host.name, "ansible_host"), f"ansible_host: {host.address}",
                     f"ansible_host: {outside}")
    return Expect(*at, "address-outside-zone", cidr)


def _dhcp_misspelt(inv: Inv) -> Expect:
    host = _system_host(inv, "portal-web1")
    at = inv.insert_after(inv.host_key(host, "ansible_host"), "dhcp: true")
    return Expect(*at, "unknown-variable", "dcops_dhcp", alone=True)


def _dhcp_not_a_flag(inv: Inv) -> Expect:
    host = _system_host(inv, "portal-web1")
    at = inv.insert_after(inv.host_key(host, "ansible_host"), "dcops_dhcp: sometimes")
    return Expect(*at, "wrong-type", "true or false", alone=True)


def _dr_false_at_level_3(inv: Inv) -> Expect:
    name = next(s.name for s in inv.model.systems.values() if s.level >= 3 and s.dr)
    at = inv.replace(inv.where(inv.spec("dcops_systems", name), "dr"), "dr: true", "dr: false")
    return Expect(*at, "dr-required", f"{name} is level")


def _left_out_of_its_group(inv: Inv) -> Expect:
    host = inv.model.hosts[_system_host(inv, "lgsp-app1")]
    group = inv.spec("dcops_systems", host.systems[0]).get("group", host.systems[0])
    others = [s for s in inv.model.systems.values() if s.name != host.systems[0]]
    assert len(host.systems) == 1 and others
    file, _ = inv.host_key(host.name, "ansible_host")
    header = inv.block(file, str(group))
    member = inv.line_of(file, f"{host.name}:", after=header)
    assert inv.delete((file, member)).strip() == f"{host.name}:"
    return Expect(*inv.host_key(host.name, "ansible_host"), "no-system", host.name, alone=True)


def _twin_declared_by_hand(inv: Inv) -> Expect:
    host = inv.model.hosts[_system_host(inv, "portal-db1", Zone.DB)]
    system = host.systems[0]
    assert inv.model.systems[system].dr and host.zone is not None
    backup = dc_sites(inv.model)["backup"]
    group = inv.spec("dcops_systems", system).get("group", system)
    cidr = subnet_cidr(inv.model, backup, system, host.zone)
    file, _ = inv.host_key(host.name, "ansible_host")
    inv.insert_after((file, inv.line_of(file, "hosts:", after=inv.block(file, group))),
                     f"  {host.name}-standby:")
    backup_servers = inv.block(file, "backup_servers")
    at = inv.insert_after((file, inv.line_of(file, "hosts:", after=backup_servers)),
                          f"  {host.name}-standby:")
    at = inv.insert_after(at, f"  ansible_host: {ipaddress.ip_network(cidr).network_address + 99}")
    inv.insert_after(at, f"dcops_zone: {host.zone.value}")
    return Expect(*at, "duplicate-twin", f"{host.name}-standby")


def _device(inv: Inv, kind: SiteKind, suffix: str) -> str:
    """A device of the class suffix at a site of `kind` (else any kind) whose variables are
    written in a YAML file (a device a plugin derives has no line to edit)."""
    def written(name: str) -> bool:
        return all(getattr(next(k for k in inv.raw.hostvars[name] if k == key), "ansible_pos",
                           None) for key in ("ansible_host", "dcops_device_class", "dcops_site"))

    devices = sorted(inv.model.devices.values(), key=lambda d: (
        inv.model.sites[d.site].kind is not kind, d.name))
    return next(d.name for d in devices if d.device_class.endswith(suffix)
                and inv.model.sites[d.site].subnets and written(d.name))


def _device_class_typo(inv: Inv) -> Expect:
    device = inv.model.devices[_device(inv, SiteKind.COMMUNE, "_router")]
    typo = device.device_class.replace("_", "", 1)
    at = inv.replace(inv.host_key(device.name, "dcops_device_class"),
                     f"dcops_device_class: {device.device_class}", f"dcops_device_class: {typo}")
    return Expect(*at, "unknown-device-class", f"'{device.device_class}'")


def _snmp_profile_typo(inv: Inv) -> Expect:
    device = inv.model.devices[_device(inv, SiteKind.COMMUNE, "_router")]
    assert "dcops_snmp_profile" in inv.raw.hostvars[device.name]
    at = inv.replace(inv.host_key(device.name, "dcops_snmp_profile"),
                     f"dcops_snmp_profile: {device.profile}",
                     f"dcops_snmp_profile: {device.profile[:-1]}")
    return Expect(*at, "unknown-snmp-profile", f"'{device.profile}'")


def _router_outside_site(inv: Inv) -> Expect:
    device = inv.model.devices[_device(inv, SiteKind.COMMUNE, "_router")]
    subnets = inv.model.sites[device.site].subnets
    at = inv.replace(inv.host_key(device.name, "ansible_host"), f"ansible_host: {device.address}",
                     "ansible_host: 192.0.2.1")
    return Expect(*at, "router-outside-site", subnets[0], alone=True)


def _overlapping_communes(inv: Inv) -> Expect:
    first, second = [s for s in inv.model.sites.values()
                     if s.kind is SiteKind.COMMUNE and s.subnets][:2]
    at = inv.where(inv.spec("dcops_sites", second.name), "subnets")
    lines = (inv.path / at[0]).read_text(encoding="utf-8").splitlines()
    key = lines[at[1] - 1]
    assert key.strip().startswith("subnets:"), key
    inv.replace(at, key.strip(), f"subnets: [{first.subnets[0]}]")
    while at[1] < len(lines) and lines[at[1]].strip().startswith("- "):  # a block-style list
        inv.delete((at[0], at[1] + 1))
        lines.pop(at[1])
    return Expect(*at, "overlapping-subnets", first.subnets[0])


def _system_site_typo(inv: Inv) -> Expect:
    system = inv.model.systems["portal"] if "portal" in inv.model.systems else next(
        iter(inv.model.systems.values()))
    at = inv.replace(inv.where(inv.spec("dcops_systems", system.name), "site"),
                     f"site: {system.site}", f"site: {system.site}x")
    return Expect(*at, "unknown-site", f"'{system.site}x'", alone=True)


def _flow(inv: Inv, pick: Callable[[Any], bool]) -> tuple[str, int, dict[str, Any]]:
    for name, spec in inv.raw.globals["dcops_systems"].items():
        for flow in spec.get("flows") or ():
            if pick(flow):
                pos = flow.ansible_pos
                return str(Path(pos[0]).resolve().relative_to(inv.path.resolve())), pos[1], {
                    "system": name, **flow}
    raise AssertionError("no such flow")


def _flow_system_typo(inv: Inv) -> Expect:
    file, line, flow = _flow(inv, lambda f: "to_system" in f)
    inv.replace((file, line), f"to_system: {flow['to_system']}", "to_system: nosuchsystem")
    return Expect(file, line, "unknown-system", "'nosuchsystem'", alone=True)


def _flow_zone_the_system_lacks(inv: Inv) -> Expect:
    file, line, flow = _flow(inv, lambda f: "to_system" not in f and "from_system" not in f)
    lacks = next(z for z in Zone if z not in tenant_zones(inv.model.systems[flow["system"]],
                                                          SiteKind.PRIMARY_DC))
    inv.replace((file, line), f"to: {flow['to']}", f"to: {lacks.value}")
    return Expect(file, line, "unknown-zone", f"'{lacks.value}'", alone=True)


def _dc_subnet_too_small(inv: Inv) -> Expect:
    site = dc_sites(inv.model)["primary"]
    net = ipaddress.ip_network(site.subnets[0])
    at = inv.replace(inv.where(inv.spec("dcops_sites", site.name), "subnets"), str(net),
                     f"{net.network_address}/24")
    return Expect(*at, "bad-dc-subnet", "/16")


def _cloud_prefix_malformed(inv: Inv) -> Expect:
    site = dc_sites(inv.model)["primary"]
    at = inv.insert_after(inv.where(inv.spec("dcops_sites", site.name), "subnets"),
                          "cloud_prefix: 10.200.0.0/33")
    return Expect(*at, "bad-dc-subnet", "cloud_prefix '10.200.0.0/33' is not a network",
                  alone=True)


def _cloud_prefix_on_a_commune(inv: Inv) -> Expect:
    commune = inv.model.sites_of(SiteKind.COMMUNE)[0]
    at = inv.insert_after(inv.where(inv.spec("dcops_sites", commune.name), "subnets"),
                          "cloud_prefix: 10.200.0.0/16")
    return Expect(*at, "stray-cloud-prefix", f"site {commune.name} (commune)", alone=True)


def _cloud_prefix_overlapping_the_other_dc(inv: Inv) -> Expect:
    dcs = dc_sites(inv.model)
    at = inv.insert_after(inv.where(inv.spec("dcops_sites", dcs["backup"].name), "subnets"),
                          f"cloud_prefix: {dcs['primary'].subnets[0]}")
    return Expect(*at, "overlapping-cloud-prefix", f"of site {dcs['primary'].name}")


def _address_plan_full(inv: Inv) -> Expect:
    name = next(iter(inv.model.systems))
    file, _ = inv.where(inv.raw.globals["dcops_systems"], name)
    text = (inv.path / file).read_text(encoding="utf-8").rstrip("\n") + "\n"
    extra = MAX_SYSTEMS - len(inv.model.systems) + 1
    blocks = [f"  extra{i}:\n    level: 1\n    owner: Test\n    site: "
              f"{dc_sites(inv.model)['primary'].name}\n    group: {name}\n"
              for i in range(extra)]
    last = text.count("\n") + sum(b.count("\n") for b in blocks[:-1]) + 1
    (inv.path / file).write_text(text + "".join(blocks), encoding="utf-8")
    return Expect(file, last, "address-plan-full", f"extra{extra - 1}")


def _host_site_typo(inv: Inv) -> Expect:
    device = inv.model.devices[_device(inv, SiteKind.COMMUNE, "_router")]
    at = inv.replace(inv.host_key(device.name, "dcops_site"), f"dcops_site: {device.site}",
                     f"dcops_site: {device.site}x")
    return Expect(*at, "unknown-site", f"'{device.site}x'")


def _parent_typo(inv: Inv) -> Expect:
    site = next(s for s in inv.model.sites.values() if s.kind is SiteKind.COMMUNE)
    spec = inv.spec("dcops_sites", site.name)
    if "parent" in spec:
        at = inv.replace(inv.where(spec, "parent"), str(spec["parent"]), "nowhere")
    else:
        at = inv.insert_after(inv.where(spec, "kind"), "parent: nowhere")
    return Expect(*at, "unknown-site", "'nowhere'", alone=True)


def _site_kind_typo(inv: Inv) -> Expect:
    site = next(s for s in inv.model.sites.values() if s.kind is SiteKind.COMMUNE)
    at = inv.replace(inv.where(inv.spec("dcops_sites", site.name), "kind"), "kind: commune",
                     "kind: comune")
    return Expect(*at, "bad-site-kind", "'comune'", alone=True)


def _group_typo(inv: Inv) -> Expect:
    name = next(iter(inv.model.systems))
    group = str(inv.spec("dcops_systems", name).get("group", name))
    spec = inv.spec("dcops_systems", name)
    if "group" in spec:
        at = inv.replace(inv.where(spec, "group"), group, group + "x")
    else:
        at = inv.insert_after(inv.where(spec, "level"), f"group: {group}x")
    return Expect(*at, "unknown-group", f"'{group}x'")


def _level_out_of_range(inv: Inv) -> Expect:
    name = next(iter(inv.model.systems))
    spec = inv.spec("dcops_systems", name)
    at = inv.replace(inv.where(spec, "level"), f"level: {spec['level']}", "level: 7")
    return Expect(*at, "bad-level", "7")


def _snmp_v2c_outside_the_lab(inv: Inv) -> Expect:
    device = inv.model.devices[_device(inv, SiteKind.COMMUNE, "_router")]
    spec = inv.raw.hostvars[device.name]["dcops_snmp"]
    at = inv.where(spec, "version")
    line = (inv.path / at[0]).read_text(encoding="utf-8").splitlines()[at[1] - 1]
    inv.replace(at, line.strip(), 'version: "2c"')
    return Expect(*at, "insecure-snmp", "v2c outside the lab")


def _v2c_allowed_outside_the_lab(inv: Inv) -> Expect:
    at = inv.replace(inv.where(inv.raw.globals, "dcops_allow_snmp_v2c"),
                     "dcops_allow_snmp_v2c: false", "dcops_allow_snmp_v2c: true")
    return Expect(*at, "insecure-snmp", "only allowed in the lab", alone=True)


def _duplicate_address(inv: Inv) -> Expect:
    first = inv.model.hosts[_system_host(inv, "portal-web1", Zone.DMZ)]
    second = next(h for h in sorted(inv.model.hosts.values(), key=lambda h: h.name)
                  if h.name > first.name and h.systems == first.systems and h.zone is first.zone)
    at = inv.replace(inv.host_key(second.name, "ansible_host"), f"ansible_host: {second.address}",
                     f"ansible_host: {first.address}")
    return Expect(*at, "duplicate-address", first.name, alone=True)


def _dcs_too_close(inv: Inv) -> Expect:
    dcs = dc_sites(inv.model)
    primary, backup = dcs["primary"], dcs["backup"]
    assert primary.location is not None and backup.location is not None
    spec = inv.spec("dcops_sites", backup.name)
    at = inv.where(spec["location"], "longitude")
    inv.replace(at, f"longitude: {spec['location']['longitude']}",
                f"longitude: {primary.location.longitude}")
    return Expect(*inv.where(spec, "location"), "dc-too-close", backup.name)


MISTAKES: dict[str, Callable[[Inv], Expect]] = {
    # the mistakes issue 17 item 4 lists as formerly uncaught
    "dr-false-at-level-3": _dr_false_at_level_3,
    "host-left-out-of-its-system-group": _left_out_of_its_group,
    "twin-declared-by-hand": _twin_declared_by_hand,
    "device-class-typo": _device_class_typo,
    "snmp-profile-typo": _snmp_profile_typo,
    "router-outside-its-site-subnet": _router_outside_site,
    "overlapping-commune-subnets": _overlapping_communes,
    # the rules of its first sentence: zones, addresses, dhcp, and every IaC placement rule
    "host-zone-its-system-lacks": _zone_the_system_lacks,
    "host-zone-typo": _zone_typo,
    "host-without-zone": _zone_missing,
    "address-outside-zone-subnet": _address_outside_zone,
    "dhcp-misspelt": _dhcp_misspelt,
    "dcops_dhcp-not-a-flag": _dhcp_not_a_flag,
    "system-at-unknown-site": _system_site_typo,
    "flow-to-unknown-system": _flow_system_typo,
    "flow-to-zone-the-system-lacks": _flow_zone_the_system_lacks,
    "dc-subnet-not-a-16": _dc_subnet_too_small,
    "address-plan-full": _address_plan_full,
    "cloud-prefix-malformed": _cloud_prefix_malformed,
    "cloud-prefix-on-a-commune": _cloud_prefix_on_a_commune,
    "cloud-prefix-overlapping-the-other-dc": _cloud_prefix_overlapping_the_other_dc,
    # references: the error is at the referring key, not at the other end
    "host-site-typo": _host_site_typo,
    "parent-site-typo": _parent_typo,
    "site-kind-typo": _site_kind_typo,
    "system-group-typo": _group_typo,
    "level-out-of-range": _level_out_of_range,
    # device and DC rules
    "snmp-v2c-outside-the-lab": _snmp_v2c_outside_the_lab,
    "v2c-allowed-outside-the-lab": _v2c_allowed_outside_the_lab,
    "duplicate-address": _duplicate_address,
    "dcs-too-close": _dcs_too_close,
}


@pytest.fixture
def inventory(tmp_path: Path) -> Inv:
    target = tmp_path / "production"
    shutil.copytree(PRODUCTION, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the example inventory's banner
        model, problems = check_inventory(target)
        raw = read(target, None)
    assert problems == [], problems
    return Inv(target, raw, model)


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistake_is_an_error_of_both_commands_at_its_line(inventory: Inv, mistake: str) -> None:
    expect = MISTAKES[mistake](inventory)
    runner = CliRunner()

    check = runner.invoke(app, ["inventory", "check", "-i", str(inventory.path), "--json"])
    assert check.exit_code == 1, check.output
    problems = json.loads(check.stdout)
    found = [p for p in problems if p["kind"] == expect.kind]
    assert found, problems
    assert (found[0]["file"], found[0]["line"]) == (expect.file, expect.line), found
    assert expect.words in found[0]["message"], found[0]
    if expect.alone:
        assert len(problems) == 1, problems

    plan = runner.invoke(app, ["iac", "plan", "-i", str(inventory.path), "--no-svg", "--json"])
    assert plan.exit_code != 0
    assert plan.stdout.strip() == ""  # nothing planned from a wrong inventory
    message = str(plan.exception)
    assert f"{expect.file}:{expect.line}: " in message and expect.words in message, message


def test_dhcp_true_accepts_an_address_the_plan_does_not_fix(inventory: Inv) -> None:
    host = inventory.model.hosts[_system_host(inventory, "portal-web1", Zone.DMZ)]
    _address_outside_zone(inventory)
    inventory.insert_after(inventory.host_key(host.name, "ansible_host"), "dcops_dhcp: true")
    model, problems = check_inventory(inventory.path)
    assert problems == [] and model.hosts[host.name].dhcp
