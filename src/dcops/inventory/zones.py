"""Security zones each level requires (Circular 12/2022), in one place for inventory, IaC and
compliance."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dcops.model.site import SiteKind, System, Zone

_L1 = frozenset({Zone.DMZ, Zone.APP})  # vùng DMZ + vùng nội bộ (máy chủ ứng dụng)
_L3 = _L1 | {Zone.DB, Zone.MGMT}  # + vùng cơ sở dữ liệu, vùng quản trị
_L4 = _L3 | {Zone.DEVMGMT}  # + vùng quản trị thiết bị

#: Zones an information system of each level must have (Circular 12/2022, design requirements).
#: Level 2 adds the internal-server zone, which is the application zone here.
REQUIRED_ZONES: Mapping[int, frozenset[Zone]] = MappingProxyType(
    {1: _L1, 2: _L1, 3: _L3, 4: _L4, 5: _L4})

#: Zones the backup DC adds for every system it mirrors.
BACKUP_DC_ZONES: frozenset[Zone] = frozenset({Zone.REPLICATION})

#: Ports a DMZ may publish to the Internet (0.0.0.0/0).
WEB_PORTS: frozenset[int] = frozenset({80, 443})

SSH_PORT = 22

#: Display labels (English, Vietnamese) for reports and diagrams.
ZONE_LABELS: Mapping[Zone, tuple[str, str]] = MappingProxyType({
    Zone.DMZ: ("DMZ", "Vùng DMZ"),
    Zone.APP: ("Application (internal)", "Vùng máy chủ ứng dụng nội bộ"),
    Zone.DB: ("Database", "Vùng cơ sở dữ liệu"),
    Zone.MGMT: ("Management", "Vùng quản trị"),
    Zone.DEVMGMT: ("Device management", "Vùng quản trị thiết bị"),
    Zone.REPLICATION: ("Replication", "Vùng sao chép dữ liệu dự phòng"),
    Zone.USER: ("Users", "Vùng người dùng"),
})

_ORDER = {zone: i for i, zone in enumerate(Zone)}


def required_zones(level: int) -> frozenset[Zone]:
    """Zones the level requires; levels above 5 are treated as 5, below 1 as 1."""
    return REQUIRED_ZONES[min(max(level, 1), 5)]


def tenant_zones(system: System, kind: SiteKind) -> tuple[Zone, ...]:
    """Zones a system's tenant gets at a site: declared, required by level, plus DR replication."""
    zones = set(system.zones) | required_zones(system.level)
    if kind is SiteKind.BACKUP_DC and system.dr:
        zones |= BACKUP_DC_ZONES
    return tuple(sorted(zones, key=_ORDER.__getitem__))
