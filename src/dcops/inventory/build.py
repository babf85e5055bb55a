"""Turn what Ansible read into the typed site model, collecting every problem on the way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcops.inventory.ansible_io import (
    Problem,
    RawInventory,
    clear_text,
    declares_example,
    key_position,
    position,
)
from dcops.model import (
    Device,
    Flow,
    Host,
    Location,
    Secret,
    Settings,
    Site,
    SiteKind,
    SiteModel,
    SnmpCredentials,
    SourceRef,
    System,
    Zone,
)

ZONES = {z.value for z in Zone}
KINDS = {k.value for k in SiteKind}


class _Builder:
    def __init__(self, raw: RawInventory) -> None:
        self.raw = raw
        self.base = raw.path if raw.path.is_dir() else raw.path.parent
        self.problems: list[Problem] = []
        self.clear: dict[bytes, tuple[bool, str | None]] = {}  # Vault ciphertext -> clear_text

    def clear_text(self, value: object) -> tuple[bool, str | None]:
        """clear_text, decrypting each Vault value once: the devices share their SNMP keys, and
        each decryption is a key derivation (about 10 ms; 4 s of a 100-commune inventory)."""
        cipher = getattr(value, "_ciphertext", None)
        if not isinstance(cipher, bytes):
            return clear_text(value)
        if cipher not in self.clear:
            self.clear[cipher] = clear_text(value)
        return self.clear[cipher]

    def where(self, value: object, key: str | None = None) -> SourceRef | None:
        if key is not None:
            return key_position(value, key, self.base)
        return position(value, self.base)

    def declared_sites(self) -> set[str]:
        """Site names dcops_sites declares, including those dropped for a bad kind (reported
        once, at the kind, not again at every reference)."""
        return declared_sites(self.raw)

    def problem(self, kind: str, message: str, where: SourceRef | None, key: str) -> None:
        self.problems.append(Problem(kind, message, where, key))

    def _mapping(self, value: object, key: str, where: SourceRef | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem("wrong-type", f"expected a mapping, found {type(value).__name__}", where,
                         key)
            return {}
        return value

    # -- settings, sites, systems --------------------------------------------------------------
    def settings(self) -> Settings:
        g = self.raw.globals

        def num(name: str, default: float) -> float:
            value = g.get(name, default)
            try:
                return float(value)
            except (TypeError, ValueError):
                self.problem("wrong-type", f"expected a number, found {value!r}", self.where(value),
                             name)
                return default

        return Settings(
            province=str(g.get("dcops_province", "")),
            province_vi=str(g.get("dcops_province_vi", "")),
            province_code=str(g.get("dcops_province_code", "") or ""),
            environment=str(g.get("dcops_environment", "production")),
            min_dc_distance_km=num("dcops_min_dc_distance_km", 30.0),
            ntp_servers=tuple(str(s) for s in g.get("dcops_ntp_servers") or ()),
            soc_collector=str(g.get("dcops_soc_collector", "")),
            allow_snmp_v2c=bool(g.get("dcops_allow_snmp_v2c", False)),
            example=declares_example(g),
        )

    def sites(self) -> dict[str, Site]:
        raw_sites = self.raw.globals.get("dcops_sites")
        sites_map = self._mapping(raw_sites, "dcops_sites", self.where(raw_sites))
        sites: dict[str, Site] = {}
        for name, spec in sites_map.items():
            key = f"dcops_sites.{name}"
            spec_map = self._mapping(spec, key, self.where(name))
            kind = str(spec_map.get("kind", ""))
            if kind not in KINDS:
                self.problem("bad-site-kind",
                             f"site kind {kind!r} is not one of {', '.join(sorted(KINDS))}",
                             self.where(spec_map, "kind") or self.where(name), f"{key}.kind")
                continue
            loc = spec_map.get("location")
            location = None
            if isinstance(loc, dict):
                try:
                    location = Location(float(loc["latitude"]), float(loc["longitude"]),
                                        str(loc.get("address", "")))
                except (KeyError, TypeError, ValueError):
                    self.problem("bad-location", "location needs numeric latitude and longitude",
                                 self.where(loc), f"{key}.location")
            sites[str(name)] = Site(
                name=str(name), kind=SiteKind(kind),
                display_name=str(spec_map.get("name", name)),
                display_name_vi=str(spec_map.get("name_vi", spec_map.get("name", name))),
                location=location,
                parent=str(spec_map["parent"]) if spec_map.get("parent") else None,
                subnets=tuple(str(s) for s in spec_map.get("subnets") or ()),
                source=self.where(name) or self.where(spec_map),
                admin_code=str(spec_map.get("admin_code", "") or ""),
                admin_type=str(spec_map.get("admin_type", "") or ""),
                cloud_prefix=str(spec_map.get("cloud_prefix", "") or ""),
            )
        return sites

    def _zone(self, value: object, where: SourceRef | None, key: str) -> Zone | None:
        if str(value) in ZONES:
            return Zone(str(value))
        self.problem("unknown-zone",
                     f"unknown zone {value!r}: expected one of {', '.join(sorted(ZONES))}",
                     where, key)
        return None

    def _level(self, spec: dict[str, Any], where: SourceRef | None, key: str) -> int:
        value = spec.get("level")
        if value is None:
            self.problem("missing-level", "information system has no security level (cấp độ 1-5)",
                         where, f"{key}.level")
            return 0
        try:
            level = int(value)
        except (TypeError, ValueError):
            level = -1
        if not 1 <= level <= 5 or isinstance(value, bool):
            self.problem("bad-level", f"security level must be 1-5, found {value!r}",
                         self.where(spec, "level") or where, f"{key}.level")
            return 0
        return level

    def _flows(self, spec: dict[str, Any], key: str) -> tuple[Flow, ...]:
        flows: list[Flow] = []
        for index, raw_flow in enumerate(spec.get("flows") or ()):
            fkey = f"{key}.flows[{index}]"
            fmap = self._mapping(raw_flow, fkey, self.where(spec, "flows"))
            where = self.where(fmap)
            src = self._zone(fmap.get("from"), where, f"{fkey}.from")
            dst = self._zone(fmap.get("to"), where, f"{fkey}.to")
            try:
                port = int(fmap.get("port", -1))
            except (TypeError, ValueError):
                port = -1
            if not 0 < port < 65536:
                self.problem("bad-port", f"flow port must be 1-65535, found {fmap.get('port')!r}",
                             where, f"{fkey}.port")
            if src is None or dst is None or not 0 < port < 65536:
                continue
            flows.append(Flow(
                source_zone=src, dest_zone=dst, port=port,
                protocol=str(fmap.get("protocol", "tcp")),
                description=str(fmap.get("description", "")),
                source_system=str(fmap["from_system"]) if fmap.get("from_system") else None,
                dest_system=str(fmap["to_system"]) if fmap.get("to_system") else None,
            ))
        return tuple(flows)

    def systems(self) -> tuple[dict[str, System], dict[str, str]]:
        raw_systems = self.raw.globals.get("dcops_systems")
        systems_map = self._mapping(raw_systems, "dcops_systems", self.where(raw_systems))
        systems: dict[str, System] = {}
        groups: dict[str, str] = {}
        for name, spec in systems_map.items():
            key = f"dcops_systems.{name}"
            where = self.where(name)
            spec_map = self._mapping(spec, key, where)
            zones = []
            for z in spec_map.get("zones") or ():
                zone = self._zone(z, self.where(spec_map, "zones"), f"{key}.zones")
                if zone is not None:
                    zones.append(zone)
            if not spec_map.get("owner"):
                self.problem("missing-owner", "information system has no owner (chủ quản)",
                             where, f"{key}.owner")
            groups[str(name)] = str(spec_map.get("group", name))
            systems[str(name)] = System(
                name=str(name),
                display_name=str(spec_map.get("name", name)),
                display_name_vi=str(spec_map.get("name_vi", spec_map.get("name", name))),
                level=self._level(spec_map, where, key),
                owner=str(spec_map.get("owner", "")),
                site=str(spec_map.get("site", "")),
                dr=bool(spec_map.get("dr", False)),
                zones=tuple(zones),
                flows=self._flows(spec_map, key),
                public_ports=tuple(int(p) for p in spec_map.get("public_ports") or ()),
                approval=str(spec_map.get("approval", "")),
                source=where,
            )
        return systems, groups

    # -- hosts and devices ---------------------------------------------------------------------
    def _flag(self, hv: dict[str, Any], host: str, var: str, where: SourceRef | None) -> bool:
        value = hv.get(var, False)
        if isinstance(value, bool):
            return value
        self.problem("wrong-type", f"host {host}: {var} must be true or false, found {value!r}",
                     self.where(value) or where, f"{host}.{var}")
        return False

    def snmp(self, name: str, hv: dict[str, Any]) -> SnmpCredentials | None:
        spec = hv.get("dcops_snmp")
        if not isinstance(spec, dict):
            return None

        def secret(field: str) -> Secret | None:
            vaulted, clear = self.clear_text(spec.get(field))
            if not vaulted and not clear:
                return None
            if not vaulted:
                self.problem("plaintext-secret",
                             f"device {name}: SNMP {field} is in clear text; encrypt it with "
                             "ansible-vault encrypt_string",
                             self.where(spec, field), f"dcops_snmp.{field}")
            return Secret(clear)

        # dcops_snmp_version / dcops_snmp_port on a host override the shared credentials' values
        raw_port: Any = hv.get("dcops_snmp_port", spec.get("port", 161))
        try:
            port = int(raw_port)
        except (TypeError, ValueError):
            self.problem("bad-port",
                         f"device {name}: SNMP port {raw_port!r} is not a number; expected 1-65535",
                         self.where(hv, "dcops_snmp_port"), "dcops_snmp_port")
            port = 161
        return SnmpCredentials(
            version=str(hv.get("dcops_snmp_version", spec.get("version", "3"))),
            port=port,
            user=str(spec.get("user", "")),
            auth_protocol=str(spec.get("auth_protocol", "")),
            auth_key=secret("auth_key"),
            priv_protocol=str(spec.get("priv_protocol", "")),
            priv_key=secret("priv_key"),
            community=secret("community"),
            context=str(spec.get("context", "")),
        )

    def hosts_and_devices(self, group_of_system: dict[str, str], sites: dict[str, Site]
                          ) -> tuple[dict[str, Host], dict[str, Device]]:
        hosts: dict[str, Host] = {}
        devices: dict[str, Device] = {}
        for name, hv in sorted(self.raw.hostvars.items()):
            groups = self.raw.host_groups.get(name, ())
            address = hv.get("ansible_host", name)
            where = self.where(address) or self.where(hv.get("dcops_site"))
            site = str(hv.get("dcops_site", ""))
            if not site:
                self.problem("missing-site", f"host {name} has no dcops_site", where,
                             f"{name}.dcops_site")
            elif site not in sites and site not in self.declared_sites():
                self.problem("unknown-site", f"{name} names unknown site {site!r}",
                             self.where(hv["dcops_site"]) or where, f"{name}.dcops_site")
            if "dcops_device_class" in hv:
                devices[name] = Device(
                    name=name, address=str(address), site=site,
                    device_class=str(hv["dcops_device_class"]),
                    profile=str(hv.get("dcops_snmp_profile", hv["dcops_device_class"])),
                    snmp=self.snmp(name, hv), vendor=str(hv.get("dcops_vendor", "")),
                    wan_uplinks=tuple(str(i) for i in hv.get("dcops_wan_uplinks") or ()),
                    groups=groups, source=where)
                continue
            zone = hv.get("dcops_zone")
            hosts[name] = Host(
                name=name, address=str(address), site=site, groups=groups,
                systems=tuple(s for s, g in group_of_system.items() if g in groups),
                zone=self._zone(zone, self.where(zone) or where, f"{name}.dcops_zone")
                if zone is not None else None,
                role=str(hv.get("dcops_role", "")),
                ha_group=str(hv.get("dcops_ha_group", "")),
                flavor=str(hv.get("dcops_flavor", "")),
                volume_gb=int(hv.get("dcops_volume_gb", 0) or 0),
                services=tuple(str(s) for s in hv.get("dcops_services") or ()),
                source=where, dhcp=self._flag(hv, name, "dcops_dhcp", where))
        return hosts, devices


def build(raw: RawInventory) -> tuple[SiteModel, list[Problem]]:
    """The site model of `raw`, and every problem found while building it."""
    builder = _Builder(raw)
    settings = builder.settings()
    sites = builder.sites()
    systems, groups = builder.systems()
    hosts, devices = builder.hosts_and_devices(groups, sites)
    model = SiteModel(settings=settings, sites=sites, systems=systems, hosts=hosts,
                      devices=devices, inventory_dir=str(raw.path))
    return model, [*raw.problems, *builder.problems]


Check = Callable[[SiteModel, RawInventory], list[Problem]]


def system_groups(raw: RawInventory) -> dict[str, tuple[str, SourceRef | None]]:
    """system -> (its Ansible group, where the group is named) as declared in dcops_systems."""
    base = raw.path if raw.path.is_dir() else raw.path.parent
    out: dict[str, tuple[str, SourceRef | None]] = {}
    systems = raw.globals.get("dcops_systems")
    if isinstance(systems, dict):
        for name, spec in systems.items():
            if isinstance(spec, dict):
                out[str(name)] = (str(spec.get("group", name)),
                                  key_position(spec, "group", base) or position(name, base))
    return out


def declared_sites(raw: RawInventory) -> set[str]:
    """Every site name dcops_sites declares, whether or not it made it into the model."""
    sites = raw.globals.get("dcops_sites")
    return {str(name) for name in sites} if isinstance(sites, dict) else set()


def relative(path: Path, base: Path) -> str:
    """`path` relative to `base` when possible."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
