"""A starting inventory for any of the 34 provinces: both DCs, every commune, example systems.

The communes come from the official list (dcops.inventory.divisions). What the library cannot
know (DC coordinates, real servers and secrets) is written as a marked example: the inventory
declares `dcops_example: true` and borrows the example province's published Vault keys and SNMP
credentials, so every command warns until the province replaces them (README, "Real secrets").
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcops.errors import InventoryError
from dcops.inventory import divisions
from dcops.inventory.scaffold_data import (
    BACKUP_DC,
    DC_DEVICES,
    EXAMPLE_SERVERS,
    EXAMPLE_SYSTEMS,
    HEADERS,
    PRIMARY_DC,
    ROLE_GROUPS,
)

#: Commune LANs: the n-th commune (official code order) at 10.<21 + n // 254>.<n % 254 + 1>.0/26.
COMMUNE_BASE = ipaddress.IPv4Network("10.21.0.0/16")
COMMUNE_PREFIX = 26
PER_BLOCK = 254  # one /26 per /24 (.1-.254 of the third octet), like the example province
EXAMPLE_SOURCE = Path("inventories") / "production"
COPIED = (".vault-pass-EXAMPLE-ONLY", ".vault-pass-collector-EXAMPLE-ONLY",
          "group_vars/network_devices/snmp.yml")


class ScaffoldError(InventoryError):
    """The starting inventory cannot be written (target not empty, example source missing)."""


@dataclass(frozen=True, slots=True)
class Scaffold:
    """What was written: the province, where, and how many sites, servers and devices."""

    province: divisions.Province
    path: Path
    communes: int
    sites: int
    servers: int
    devices: int
    files: tuple[str, ...]


def commune_subnet(index: int) -> str:
    """The LAN of the commune at `index` (0-based, official code order): a /26 per /24."""
    block, slot = divmod(index, PER_BLOCK)
    base = int(COMMUNE_BASE.network_address) + (block << 16) + ((slot + 1) << 8)
    return str(ipaddress.IPv4Network((base, COMMUNE_PREFIX)))


def site_name(unit: divisions.Commune, taken: set[str]) -> str:
    """Site name of a commune: its ascii codename with dashes, the code added if taken."""
    name = unit.slug.replace("_", "-")
    if name in taken:
        name = f"{name}-{unit.code}"
    taken.add(name)
    return name


def example_source(start: Path | None = None) -> Path:
    """The example province (inventories/production) whose published keys the scaffold borrows."""
    for root in (start or Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = root / EXAMPLE_SOURCE
        if all((candidate / f).is_file() for f in COPIED):
            return candidate
    raise ScaffoldError(f"cannot find the example province {EXAMPLE_SOURCE} (its example Vault "
                        "keys and SNMP credentials are copied); run from the dcops checkout")


def _dump(data: dict[str, Any], header: str) -> str:
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    return "---\n" + "".join(f"# {line}\n".replace("# \n", "#\n")
                             for line in header.splitlines()) + body


def _sites(units: list[divisions.Commune]) -> tuple[dict[str, Any], dict[str, Any]]:
    """dcops_sites and the commune routers (host -> vars)."""
    sites: dict[str, Any] = {"primary-dc": PRIMARY_DC, "backup-dc": BACKUP_DC}
    routers: dict[str, Any] = {}
    taken = set(sites)
    for index, unit in enumerate(units):
        name = site_name(unit, taken)
        subnet = commune_subnet(index)
        sites[name] = {"kind": "commune", "name": f"{unit.short_name} "
                       f"{unit.type_en}", "name_vi": unit.name, "admin_code": str(unit.code),
                       "admin_type": unit.type, "subnets": [subnet]}
        routers[f"{name}-rtr1"] = {
            "ansible_host": str(next(ipaddress.ip_network(subnet).hosts())),
            "dcops_site": name, "dcops_device_class": "commune_router",
            "dcops_snmp_profile": "cisco_router", "dcops_wan_uplinks": ["Dialer0"]}
    return sites, routers


def commune_sites(province_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The commune sites (dcops_sites entries) and commune routers (host -> vars) of a province,
    exactly as the scaffold writes them; inventories/production keeps Đồng Nai's as data."""
    sites, routers = _sites(divisions.communes(divisions.province(province_name)))
    return {n: s for n, s in sites.items() if s["kind"] == "commune"}, routers


def _hosts(routers: dict[str, Any]) -> dict[str, Any]:
    """hosts.yml: DC servers and devices, commune routers, system and role groups."""
    servers = {n: {k: v for k, v in h.items() if k not in ("site", "system")}
               for n, h in EXAMPLE_SERVERS.items()}
    primary = {n: v for n, v in servers.items() if EXAMPLE_SERVERS[n]["site"] == "primary-dc"}
    backup = {n: v for n, v in servers.items() if EXAMPLE_SERVERS[n]["site"] == "backup-dc"}
    children: dict[str, Any] = {
        "primary_dc": {"children": {"primary_servers": None, "primary_network": None}},
        "backup_dc": {"children": {"backup_servers": None, "backup_network": None}},
        "servers": {"children": {"primary_servers": None, "backup_servers": None}},
        "network_devices": {"children": {"primary_network": None, "backup_network": None,
                                         "commune_network": None}},
        "primary_servers": {"hosts": primary},
        "backup_servers": {"hosts": backup},
        "primary_network": {"hosts": DC_DEVICES["primary-dc"]},
        "backup_network": {"hosts": DC_DEVICES["backup-dc"]},
        "commune_network": {"hosts": routers},
    }
    for system, spec in EXAMPLE_SYSTEMS.items():
        children[spec.get("group", system)] = {
            "hosts": {n: None for n, h in EXAMPLE_SERVERS.items() if h["system"] == system}}
    for group, members in ROLE_GROUPS.items():
        children[group] = {"hosts": dict.fromkeys(members)}
    return {"all": {"children": children}}


def render(province: divisions.Province) -> tuple[dict[str, str], int, int]:
    """Files of the starting inventory (relative path -> text), the number of sites and devices."""
    units = divisions.communes(province)
    sites, routers = _sites(units)
    main = {"dcops_province": divisions.fold(province.name).title(),
            "dcops_province_vi": province.name, "dcops_province_code": f"{province.code:02d}",
            "dcops_environment": "production", "dcops_example": True,
            "dcops_min_dc_distance_km": 30, "dcops_ntp_servers": ["10.10.40.41", "10.11.40.41"],
            "dcops_soc_collector": EXAMPLE_SERVERS["soc1"]["ansible_host"],
            "dcops_allow_snmp_v2c": False,
            "ansible_ssh_common_args": "-o UserKnownHostsFile={{ inventory_dir }}/known_hosts"
                                       ".txt -o StrictHostKeyChecking=yes"}
    hosts = _hosts(routers)
    fill = {"province": province.name, "code": f"{province.code:02d}", "units": len(units)}
    header = {path: text.format(**fill) for path, text in HEADERS.items()}
    files = {
        "hosts.yml": _dump(hosts, header["hosts.yml"]),
        "group_vars/all/main.yml": _dump(main, header["group_vars/all/main.yml"]),
        "group_vars/all/sites.yml": _dump({"dcops_sites": sites},
                                          header["group_vars/all/sites.yml"]),
        "group_vars/all/systems.yml": _dump({"dcops_systems": EXAMPLE_SYSTEMS},
                                            header["group_vars/all/systems.yml"]),
        "group_vars/primary_dc.yml": "---\ndcops_site: primary-dc\n",
        "group_vars/backup_dc.yml": "---\ndcops_site: backup-dc\n",
        "known_hosts.txt": "",
    }
    return files, len(sites), len(routers) + sum(len(d) for d in DC_DEVICES.values())


def scaffold(province_name: str, out: Path, *, overwrite: bool = False,
             source: Path | None = None) -> Scaffold:
    """Write the starting inventory of a province to `out` (refused if not empty, unless
    `overwrite`: then the scaffold's files are replaced and any other file is left alone)."""
    province = divisions.province(province_name)
    if out.exists() and not out.is_dir():
        raise ScaffoldError("--out is a file; expected a directory", file=str(out))
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ScaffoldError("--out is not empty; choose an empty directory or add --overwrite "
                            "(replaces the scaffold's files, keeps the others)", file=str(out))
    example = source or example_source()
    files, sites, devices = render(province)
    for rel, text in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for rel in COPIED:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(example / rel, target)
    return Scaffold(province, out, sites - 2, sites, len(EXAMPLE_SERVERS), devices,
                    tuple(sorted([*files, *COPIED])))
