"""Commune rules: a commune's official code exists, is its province's and names one site only.

Since 1 July 2025 the province reaches every commune-level unit (xã, phường, đặc khu) directly;
a commune site carries the unit's official code (`admin_code`) and type (`admin_type`), checked
against the kept list of divisions (dcops.inventory.divisions).
"""

from __future__ import annotations

from dcops.inventory import divisions
from dcops.inventory.ansible_io import Problem, RawInventory, position
from dcops.inventory.planchecks import Where
from dcops.model.site import Settings, SiteKind, SiteModel


def declared_province(settings: Settings) -> divisions.Province | None:
    """The inventory's province in the official list: by dcops_province_code, else by name
    (dcops_province_vi, dcops_province); None when it declares none the list knows."""
    for value in (settings.province_code, settings.province_vi, settings.province):
        if value:
            try:
                return divisions.province(value)
            except divisions.UnknownDivisionError:
                if value == settings.province_code:
                    raise
    return None


def check_communes(model: SiteModel, raw: RawInventory) -> list[Problem]:
    """Commune codes exist, belong to the declared province, match their type, are unique."""
    where = Where(model, raw)
    out: list[Problem] = []
    try:
        province = declared_province(model.settings)
    except divisions.UnknownDivisionError as exc:
        base = raw.path if raw.path.is_dir() else raw.path.parent
        out.append(Problem("unknown-province", f"dcops_province_code: {exc}",
                           position(raw.globals.get("dcops_province_code"), base),
                           "dcops_province_code"))
        province = None
    seen: dict[str, str] = {}
    for site in model.sites.values():
        key = f"dcops_sites.{site.name}"
        if not site.admin_code:
            if site.admin_type:
                out.append(Problem("missing-admin-code", f"site {site.name} has admin_type but no "
                                   "admin_code (the official code of the commune)",
                                   where.site(site.name, "admin_type"), f"{key}.admin_code"))
            continue
        at = where.site(site.name, "admin_code")
        if site.kind is not SiteKind.COMMUNE:
            out.append(Problem("bad-admin-code", f"site {site.name} is a {site.kind.value}: only "
                               "commune sites carry an official commune code", at,
                               f"{key}.admin_code"))
            continue
        unit = divisions.commune(site.admin_code)
        if unit is None:
            out.append(Problem("unknown-admin-code",
                               f"site {site.name}: {site.admin_code!r} is not the official code of "
                               "any commune, ward or special zone (since 1 July 2025)", at,
                               f"{key}.admin_code"))
            continue
        if province is not None and unit.province_code != province.code:
            owner = next((p.name for p in divisions.provinces() if p.code == unit.province_code),
                         str(unit.province_code))
            out.append(Problem("foreign-admin-code",
                               f"site {site.name}: code {unit.code} is {unit.name} of {owner}, "
                               f"not of {province.name} (the inventory's province)", at,
                               f"{key}.admin_code"))
        if site.admin_type and site.admin_type != unit.type:
            out.append(Problem("bad-admin-type",
                               f"site {site.name}: admin_type {site.admin_type!r} but code "
                               f"{unit.code} is {unit.name} ({unit.type})",
                               where.site(site.name, "admin_type"), f"{key}.admin_type"))
        other = seen.setdefault(str(unit.code), site.name)
        if other != site.name:
            out.append(Problem("duplicate-admin-code",
                               f"site {site.name}: code {unit.code} ({unit.name}) is already site "
                               f"{other}'s", at, f"{key}.admin_code"))
    return out
