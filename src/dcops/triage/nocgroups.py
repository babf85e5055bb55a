"""How /noc groups sites: the DCs, the communes and wards by type in alphabetical blocks, legacy
district sites, and the filter of the page.

Since 1 July 2025 a province reaches each of its ~100 commune-level units (xã, phường, đặc khu)
directly, so a flat list of communes would be one unreadable group: parentless communes are grouped
by their type (`admin_type`, else the type their Vietnamese name starts with) and a type with more
than :data:`COMMUNE_BLOCK` sites is cut into even alphabetical blocks named by their first and last
commune ("Communes / Xã (An Phước - Lộc Hưng)"). Communes that still record a `parent` (a former
district) stay grouped per parent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dcops.inventory.divisions import fold
from dcops.model.site import Site, SiteKind, SiteModel

STATE_ORDER = {"down": 0, "unknown": 1, "up": 2}
#: Parentless communes of one type per group; beyond it they are split into alphabetical blocks.
COMMUNE_BLOCK = 25
#: Commune-level types (as in the site model and the official list) and their group titles.
COMMUNE_TYPE_TITLES = {"phường": ("wards", "Wards / Phường"),
                       "xã": ("communes", "Communes / Xã"),
                       "đặc khu": ("special-zones", "Special zones / Đặc khu"),
                       "": ("other", "Communes and wards / Xã, phường")}
DC_TITLES = {SiteKind.PRIMARY_DC: "Primary DC / Trung tâm dữ liệu chính",
             SiteKind.BACKUP_DC: "Backup DC / Trung tâm dữ liệu dự phòng"}
KIND_TITLES = {"district": "District sites / Địa điểm cấp huyện (cũ, trước 1/7/2025)",
               "lab": "Lab / Phòng thí nghiệm"}
ORDER = {"primary_dc": 0, "backup_dc": 1, "commune": 2, "district": 3, "lab": 4, "other": 5}


@dataclass(slots=True)
class DeviceRow:
    """One device's state as the pages show it."""

    name: str
    site: str
    device_class: str = ""
    state: str = "unknown"
    if_errors: float | None = None  # errors per second over 5m, all interfaces
    cpu: float | None = None
    temperature: float | None = None
    last_poll: str = ""  # ISO 8601 UTC of the last successful poll
    wan: list[tuple[str, str]] = field(default_factory=list)  # (ifName, up/down/unknown)


@dataclass(slots=True)
class SiteGroup:
    """A collapsible group of sites on /noc (a DC, a block of wards, a parent's communes...)."""

    key: str
    title: str
    kind: str
    sites: dict[str, list[DeviceRow]] = field(default_factory=dict)

    @property
    def devices(self) -> list[DeviceRow]:
        """Its devices, down first."""
        return sorted((d for rows in self.sites.values() for d in rows),
                      key=lambda d: (STATE_ORDER[d.state], d.site, d.name))

    def count(self, state: str) -> int:
        """Devices in `state`."""
        return sum(1 for d in self.devices if d.state == state)

    @property
    def sites_down(self) -> int:
        """Sites with a device down (a commune office cut off, most of the time)."""
        return sum(1 for rows in self.sites.values() if any(d.state == "down" for d in rows))

    @property
    def wan_down(self) -> int:
        """WAN uplinks down (of devices that may themselves be up: a redundant link lost)."""
        return sum(1 for d in self.devices for _, st in d.wan if st == "down")

    @property
    def state(self) -> str:
        """down when any device is down, up when all are up, else unknown."""
        return worst(d.state for d in self.devices)


def worst(states: Iterable[str]) -> str:
    """down > unknown > up; nothing at all is unknown."""
    seen = set(states)
    if "down" in seen:
        return "down"
    return "up" if seen == {"up"} else "unknown"


def commune_type(site: Site) -> str:
    """xã, phường or đặc khu: the site's admin_type, else the type its Vietnamese name starts
    with; "" when neither says."""
    if site.admin_type and site.admin_type in COMMUNE_TYPE_TITLES:
        return site.admin_type
    name = site.display_name_vi.strip().lower()
    return next((t for t in ("đặc khu", "phường", "xã") if name.startswith(t + " ")), "")


def site_label(site: Site) -> str:
    """What a site is, bilingual, for an alert's page: "Phường Trấn Biên: ward / phường, code
    26041", "Trung tâm dữ liệu chính: primary DC", "Biên Hòa: former district / huyện cũ"."""
    name = site.display_name_vi or site.display_name or site.name
    if site.kind is SiteKind.COMMUNE:
        kind = commune_type(site)
        what = {"phường": "ward / phường", "xã": "commune / xã",
                "đặc khu": "special zone / đặc khu"}.get(kind, "commune or ward / xã, phường")
        return f"{name}: {what}" + (f", code / mã {site.admin_code}" if site.admin_code else "")
    return f"{name}: " + {SiteKind.PRIMARY_DC: "primary DC / TTDL chính",
                          SiteKind.BACKUP_DC: "backup DC / TTDL dự phòng",
                          SiteKind.DISTRICT: "former district / huyện cũ (trước 1/7/2025)",
                          SiteKind.LAB: "lab / phòng thí nghiệm"}.get(site.kind, site.kind.value)


def _sort_name(site: Site) -> str:
    """The commune's name without its type, folded (Phường Trấn Biên -> "tran bien")."""
    return fold(_short(site)) or site.name


def _short(site: Site) -> str:
    """The commune's Vietnamese name without its type ("Trấn Biên" for Phường Trấn Biên)."""
    name = (site.display_name_vi or site.display_name or site.name).strip()
    kind = commune_type(site)
    return name[len(kind) + 1:] if kind and name.lower().startswith(kind + " ") else name


def commune_groups(model: SiteModel) -> dict[str, tuple[str, str]]:
    """Site name -> (group key, title) of every commune site of the model."""
    out: dict[str, tuple[str, str]] = {}
    by_type: dict[str, list[Site]] = {}
    for s in model.sites.values():
        if s.kind is not SiteKind.COMMUNE:
            continue
        if s.parent:
            out[s.name] = (f"communes:{s.parent}",
                           f"Communes and wards / Xã, phường ({s.parent})")
        else:
            by_type.setdefault(commune_type(s), []).append(s)
    for kind, members in by_type.items():
        slug, title = COMMUNE_TYPE_TITLES[kind]
        members.sort(key=lambda s: (_sort_name(s), s.name))
        if len(members) <= COMMUNE_BLOCK:
            out.update((s.name, (f"communes:{slug}", title)) for s in members)
            continue
        blocks = -(-len(members) // COMMUNE_BLOCK)
        size = -(-len(members) // blocks)  # even blocks: 40 sites are 20 + 20, not 25 + 15
        for i in range(0, len(members), size):
            block = members[i:i + size]
            span = f"{_short(block[0])} - {_short(block[-1])}"
            out.update((s.name, (f"communes:{slug}:{i // size + 1}", f"{title} ({span})"))
                       for s in block)
    return out


def _site_text(site: Site | None, name: str) -> str:
    if site is None:
        return fold(name)
    return fold(" ".join((site.name, site.display_name, site.display_name_vi, site.admin_code,
                          site.admin_type, site.parent or "")))


def select(grouped: list[SiteGroup], model: SiteModel | None, text: str,
           state: str) -> list[SiteGroup]:
    """The groups narrowed to what matches: `text` (folded, so "tran bien" finds Phường Trấn
    Biên) in a group's title, a site's names or official code, or a device's name or class;
    `state` (up, down, unknown) of the devices. Empty text and state keep everything."""
    wanted = fold(text)
    if not wanted and not state:
        return grouped
    out: list[SiteGroup] = []
    for g in grouped:
        whole = bool(wanted) and wanted in fold(g.title)
        kept = SiteGroup(g.key, g.title, g.kind)
        for site, rows in g.sites.items():
            s = model.sites.get(site) if model is not None else None
            site_hit = not wanted or whole or wanted in _site_text(s, site)
            hits = [d for d in rows if (site_hit or wanted in fold(f"{d.name} {d.device_class}"))
                    and (not state or d.state == state)]
            if hits or (site_hit and not state):
                kept.sites[site] = hits
        if kept.sites:
            out.append(kept)
    return out
