"""Site, device and DR rules: subnets, routers, device classes, SNMP profiles, DR by level."""

from __future__ import annotations

import difflib
import ipaddress
from functools import cache
from pathlib import Path

import yaml

from dcops.inventory.ansible_io import Problem, RawInventory
from dcops.inventory.planchecks import DHCP_VAR, Where
from dcops.model.site import SiteModel

#: Device classes the toolkit knows (WAN peers, SNMP targets, topology).
DEVICE_CLASSES = frozenset({"core_switch", "firewall", "wan_router", "district_router",
                            "district_switch", "commune_router", "commune_switch"})
#: From this level a system needs a backup (dự phòng) in the backup DC (Circular 12/2022).
DR_FROM_LEVEL = 3
PROFILES = Path("monitoring") / "snmp" / "profiles.yml"


def _suggest(value: str, known: frozenset[str] | set[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _ancestors(model: SiteModel, name: str) -> set[str]:
    seen: set[str] = set()
    site = model.sites.get(name)
    while site is not None and site.parent and site.parent not in seen:
        seen.add(site.parent)
        site = model.sites.get(site.parent)
    return seen


def check_site_subnets(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Site subnets are networks and no two sites share addresses (a site may sit in its parent)."""
    where = Where(model, raw)
    out: list[Problem] = []
    seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for site in model.sites.values():
        key = f"dcops_sites.{site.name}.subnets"
        for text in site.subnets:
            try:
                net = ipaddress.ip_network(text)
            except ValueError:
                out.append(Problem("bad-subnet", f"site {site.name}: {text!r} is not a network "
                                   "address (expected e.g. 10.21.1.0/26)",
                                   where.site(site.name, "subnets"), key))
                continue
            family = _ancestors(model, site.name)
            for other, other_net in seen:
                if other in family or site.name in _ancestors(model, other):
                    continue
                if other != site.name and net.overlaps(other_net):
                    out.append(Problem("overlapping-subnets",
                                       f"site {site.name}: subnet {net} overlaps {other_net} of "
                                       f"site {other}", where.site(site.name, "subnets"), key))
            seen.append((site.name, net))
    return out


def check_routers(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """A router's address lies in its site's subnets (the WAN peers with it there)."""
    where = Where(model, raw)
    out: list[Problem] = []
    if model.settings.environment == "lab":  # lab devices are SNMP agents on loopback
        return out
    for device in model.devices.values():
        site = model.sites.get(device.site)
        if not device.device_class.endswith("_router") or site is None or not site.subnets:
            continue
        try:
            addr = ipaddress.ip_address(device.address)
            nets = [ipaddress.ip_network(s) for s in site.subnets]
        except ValueError:
            continue  # a bad subnet is reported by check_site_subnets
        if not any(addr in n for n in nets):
            out.append(Problem("router-outside-site",
                               f"router {device.name} address {addr} is outside the subnets of "
                               f"its site {site.name} ({', '.join(site.subnets)})",
                               where.host(device.name, "ansible_host"),
                               f"{device.name}.ansible_host"))
    return out


@cache
def _profiles(path: Path) -> frozenset[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return frozenset(str(k) for k in profiles) if isinstance(profiles, dict) else frozenset()


def profiles_file(inventory: Path) -> Path | None:
    """monitoring/snmp/profiles.yml beside the inventories/ of `inventory`, else the checkout's."""
    base = inventory.resolve() if inventory.is_dir() else inventory.resolve().parent
    for root in (base.parent.parent, Path.cwd(), Path(__file__).resolve().parents[3]):
        if (root / PROFILES).is_file():
            return root / PROFILES
    return None


def check_devices(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Device classes and SNMP polling profiles are ones the toolkit knows."""
    where = Where(model, raw)
    out: list[Problem] = []
    found = profiles_file(raw.path)
    profiles = _profiles(found) if found is not None else None
    for device in sorted(model.devices.values(), key=lambda d: d.name):
        if device.device_class not in DEVICE_CLASSES:
            out.append(Problem("unknown-device-class",
                               f"device {device.name}: class {device.device_class!r} is not one "
                               f"of {', '.join(sorted(DEVICE_CLASSES))}"
                               f"{_suggest(device.device_class, DEVICE_CLASSES)}",
                               where.host(device.name, "dcops_device_class"),
                               f"{device.name}.dcops_device_class"))
        if profiles is not None and device.profile not in profiles:
            key = ("dcops_snmp_profile" if "dcops_snmp_profile" in raw.hostvars.get(device.name, {})
                   else "dcops_device_class")
            out.append(Problem("unknown-snmp-profile",
                               f"device {device.name}: SNMP profile {device.profile!r} is not in "
                               f"{found}{_suggest(device.profile, set(profiles))}",
                               where.host(device.name, key), f"{device.name}.{key}"))
    return out


def check_dr_levels(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Systems of level 3 and above are mirrored in the backup DC (`dr: true`)."""
    where = Where(model, raw)
    return [Problem("dr-required",
                    f"system {s.name} is level {s.level} but has dr: false; from level "
                    f"{DR_FROM_LEVEL} Circular 12/2022 requires a backup in the backup DC: set "
                    "dr: true (the IaC then builds its standby twins)",
                    where.system(s, "dr"), f"dcops_systems.{s.name}.dr")
            for s in model.systems.values() if s.level >= DR_FROM_LEVEL and not s.dr]


def check_host_variables(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Misspelt dcops host variables that would otherwise be ignored (`dhcp` for dcops_dhcp)."""
    where = Where(model, raw)
    return [Problem("unknown-variable", f"host {name}: `dhcp` is not read; use `{DHCP_VAR}: true`",
                    where.host(name, "dhcp"), f"{name}.dhcp")
            for name, hv in sorted(raw.hostvars.items()) if "dhcp" in hv]
