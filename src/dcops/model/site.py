"""The site model: sites, information systems, servers and network devices of one province."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from dcops.errors import DcopsError


class SecretUnavailableError(DcopsError):
    """A vaulted secret was needed but the vault password is not known."""


class SiteKind(StrEnum):
    """What a site is in the provincial topology."""

    PRIMARY_DC = "primary_dc"
    BACKUP_DC = "backup_dc"
    DISTRICT = "district"
    COMMUNE = "commune"
    LAB = "lab"


class Zone(StrEnum):
    """Security zones of Circular 12/2022 (design requirements per level)."""

    DMZ = "dmz"  # vùng DMZ: services published to the Internet
    APP = "app"  # vùng máy chủ nội bộ / ứng dụng
    DB = "db"  # vùng cơ sở dữ liệu (level 3+)
    MGMT = "mgmt"  # vùng quản trị (level 3+)
    DEVMGMT = "devmgmt"  # vùng quản trị thiết bị (level 4+)
    REPLICATION = "replication"  # primary <-> backup DC replication network
    USER = "user"  # vùng người dùng (district/commune offices)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a model element was declared: the file and line a user should open."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class Secret:
    """A secret value (usually from Ansible Vault) that never shows itself in repr or logs.

    `value` is None when the secret is vaulted and no vault password was given: the model still
    knows the secret exists (so the inventory can be checked) but cannot use it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    @property
    def available(self) -> bool:
        """True when the clear value is known (the vault could be opened)."""
        return self._value is not None

    def reveal(self) -> str:
        """Return the clear value; call only where it is sent to its consumer."""
        if self._value is None:
            raise SecretUnavailableError(
                "secret is vaulted and no vault password was given (--vault-password-file)")
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Location:
    """Geographic position of a site (WGS84 degrees) and its postal address."""

    latitude: float
    longitude: float
    address: str = ""

    def distance_km(self, other: Location) -> float:
        """Great-circle distance in kilometres (haversine, mean Earth radius 6371 km)."""
        lat1, lon1, lat2, lon2 = map(
            math.radians, (self.latitude, self.longitude, other.latitude, other.longitude)
        )
        a = (math.sin((lat2 - lat1) / 2) ** 2
             + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
        return 2 * 6371.0 * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class Site:
    """A place: the primary DC, the backup DC, a commune-level office (xã, phường, đặc khu) or a
    former district (huyện, abolished 1 July 2025; kept only as an optional legacy grouping)."""

    name: str
    kind: SiteKind
    display_name: str
    display_name_vi: str
    location: Location | None = None
    parent: str | None = None  # optional legacy grouping: the former district of a commune
    subnets: tuple[str, ...] = ()  # LAN prefixes reached over the WAN (VPN endpoint groups)
    source: SourceRef | None = None
    admin_code: str = ""  # a commune's official code (mã đơn vị hành chính), e.g. "26068"
    admin_type: str = ""  # a commune's type: "xã", "phường" or "đặc khu"
    #: A DC's cloud address prefix: the IPv4 block the IaC carves its zone subnets from when it
    #: is not the DC's LAN (`subnets`), e.g. the lab, whose LAN is the lab bridge ("": none).
    cloud_prefix: str = ""

    @property
    def plan_prefix(self) -> str:
        """The prefix the address plan carves a DC's zones from: the cloud prefix, else the
        first LAN subnet ("" when the site has neither)."""
        return self.cloud_prefix or (self.subnets[0] if self.subnets else "")

    @property
    def wan_prefixes(self) -> tuple[str, ...]:
        """What the other sites reach over the WAN: a DC's cloud prefix when it has one (its
        LAN is not on the WAN then), else its LAN subnets."""
        return (self.cloud_prefix,) if self.cloud_prefix else self.subnets


@dataclass(frozen=True, slots=True)
class Flow:
    """An allowed network flow between zones; everything else between zones is denied."""

    source_zone: Zone
    dest_zone: Zone
    port: int
    protocol: str = "tcp"
    description: str = ""
    source_system: str | None = None  # None: the same system
    dest_system: str | None = None


@dataclass(frozen=True, slots=True)
class System:
    """An information system (hệ thống thông tin) with its approved security level (cấp độ)."""

    name: str
    display_name: str
    display_name_vi: str
    level: int
    owner: str
    site: str
    dr: bool = False  # mirrored in the backup DC
    zones: tuple[Zone, ...] = ()
    flows: tuple[Flow, ...] = ()
    public_ports: tuple[int, ...] = ()  # DMZ ports published to the Internet
    approval: str = ""  # level approval decision (số quyết định phê duyệt cấp độ)
    source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class SnmpCredentials:
    """How to reach a device's SNMP agent; v3 authPriv unless the inventory allows v2c (lab)."""

    version: str  # "3" or "2c" (or "1")
    port: int = 161
    user: str = ""
    auth_protocol: str = ""  # SHA, SHA256, SHA512
    auth_key: Secret | None = None
    priv_protocol: str = ""  # AES, AES256
    priv_key: Secret | None = None
    community: Secret | None = None
    context: str = ""


@dataclass(frozen=True, slots=True)
class Host:
    """A server managed by Ansible (a VM in one of the DCs or a lab host)."""

    name: str
    address: str
    site: str
    groups: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()
    zone: Zone | None = None
    role: str = ""  # lgsp_app, portal_web, db, monitoring, backup, ca, ...
    ha_group: str = ""  # hosts sharing an ha_group go to one anti-affinity server group
    flavor: str = ""
    volume_gb: int = 0
    services: tuple[str, ...] = ()  # postgresql, nginx, ...
    source: SourceRef | None = None
    dhcp: bool = False  # dcops_dhcp: its address comes from DHCP, not the zone address plan


@dataclass(frozen=True, slots=True)
class Device:
    """A network device polled over SNMP: core switch, firewall, WAN router, district gear."""

    name: str
    address: str
    site: str
    device_class: str  # core_switch, firewall, wan_router, district_router, ...
    profile: str  # SNMP polling profile in monitoring/snmp/
    snmp: SnmpCredentials | None
    vendor: str = ""
    wan_uplinks: tuple[str, ...] = ()  # ifName of WAN links (for WanLink* alerts)
    groups: tuple[str, ...] = ()
    source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Province-wide settings of the site model."""

    province: str = ""
    province_vi: str = ""
    province_code: str = ""  # official province code (dcops_province_code), e.g. "75"
    environment: str = "production"
    min_dc_distance_km: float = 30.0
    ntp_servers: tuple[str, ...] = ()
    soc_collector: str = ""  # address receiving syslog and SNMP traps
    allow_snmp_v2c: bool = False  # only the lab may set this
    example: bool = False  # dcops_example: committed example secrets, never real machines


@dataclass(frozen=True, slots=True)
class SiteModel:
    """The whole province: what every part of dcops reads."""

    settings: Settings
    sites: dict[str, Site] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    inventory_dir: str = ""

    def sites_of(self, kind: SiteKind) -> list[Site]:
        """Sites of one kind, in name order."""
        return sorted((s for s in self.sites.values() if s.kind is kind), key=lambda s: s.name)

    def hosts_of_system(self, system: str) -> list[Host]:
        """Hosts serving an information system, in name order."""
        return sorted((h for h in self.hosts.values() if system in h.systems),
                      key=lambda h: h.name)

    def devices_at(self, site: str) -> list[Device]:
        """Network devices at a site, in name order."""
        return sorted((d for d in self.devices.values() if d.site == site), key=lambda d: d.name)
