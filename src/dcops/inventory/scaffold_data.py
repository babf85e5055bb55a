"""What `dcops inventory scaffold` writes besides the communes: the DC pair and EXAMPLE systems.

The DC locations are placeholders (the official list has no coordinates); the systems, servers
and devices show the shape of a province and are flagged `example: true`.
"""

from __future__ import annotations

from typing import Any

_EXAMPLE_PLACE = "EXAMPLE: replace with the DC's real address and coordinates"

PRIMARY_DC: dict[str, Any] = {
    "kind": "primary_dc", "name": "Provincial Data Centre (primary)",
    "name_vi": "Trung tâm dữ liệu tỉnh (chính)",
    "location": {"latitude": 16.0, "longitude": 108.0, "address": _EXAMPLE_PLACE},
    "subnets": ["10.10.0.0/16"]}
BACKUP_DC: dict[str, Any] = {
    "kind": "backup_dc", "name": "Provincial Data Centre (backup)",
    "name_vi": "Trung tâm dữ liệu tỉnh (dự phòng)",
    "location": {"latitude": 16.0, "longitude": 108.35, "address": _EXAMPLE_PLACE},
    "subnets": ["10.11.0.0/16"]}

_ADMIN = "bastion administration"
EXAMPLE_SYSTEMS: dict[str, Any] = {
    "portal": {
        "example": True,
        "name": "Provincial public-service portal (EXAMPLE)",
        "name_vi": "Cổng dịch vụ công cấp tỉnh (VÍ DỤ)",
        "level": 3, "owner": "Provincial People's Committee Office (Văn phòng UBND tỉnh)",
        "site": "primary-dc", "group": "portal", "dr": True,
        "zones": ["dmz", "app", "db", "mgmt"], "public_ports": [443],
        "flows": [
            {"from": "dmz", "to": "app", "port": 8443, "description": "web tier to application"},
            {"from": "app", "to": "db", "port": 5432, "description": "application to PostgreSQL"},
            *({"from": "mgmt", "to": z, "port": 22, "from_system": "dc_infra",
               "description": _ADMIN} for z in ("dmz", "app", "db")),
        ]},
    "dc_infra": {
        "example": True,
        "name": "Shared DC infrastructure: SOC/NOC, backup, bastion (EXAMPLE)",
        "name_vi": "Hạ tầng dùng chung của Trung tâm dữ liệu (VÍ DỤ)",
        "level": 3, "owner": "Provincial Digital Transformation Centre (Trung tâm Chuyển đổi số)",
        "site": "primary-dc", "group": "dc_infra", "dr": True, "zones": ["app", "mgmt"],
        "flows": [{"from": "mgmt", "to": "mgmt", "port": 22, "description": _ADMIN}]},
}


def _server(system: str, site: str, address: str, zone: str, role: str, flavor: str,
            volume_gb: int, *services: str) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "site": site, "ansible_host": address,
                           "dcops_zone": zone, "dcops_role": role, "dcops_flavor": flavor,
                           "dcops_volume_gb": volume_gb}
    if services:
        out["dcops_services"] = list(services)
    return out


#: Example servers: zone subnets 10.<dc>.<zone block + system index>.0/24 (portal 0, dc_infra 1).
EXAMPLE_SERVERS: dict[str, dict[str, Any]] = {
    "portal-web1": _server("portal", "primary-dc", "10.10.10.11", "dmz", "portal_web",
                           "m1.medium", 40, "nginx"),
    "portal-app1": _server("portal", "primary-dc", "10.10.20.11", "app", "portal_app",
                           "m1.large", 100),
    "portal-db1": _server("portal", "primary-dc", "10.10.30.11", "db", "db", "m1.xlarge", 500,
                          "postgresql"),
    "bastion1": _server("dc_infra", "primary-dc", "10.10.41.11", "mgmt", "bastion", "m1.small",
                        20),
    "soc1": _server("dc_infra", "primary-dc", "10.10.41.21", "mgmt", "monitoring", "m1.xlarge",
                    1000, "prometheus", "alertmanager"),
    "backup1": _server("dc_infra", "backup-dc", "10.11.41.11", "mgmt", "backup", "m1.large",
                       8000),
}

#: Role groups the playbooks target.
ROLE_GROUPS = {"monitoring": ["soc1"], "backup_servers_role": ["backup1"],
               "db_servers": ["portal-db1"]}


def _device(address: str, device_class: str, profile: str, *uplinks: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ansible_host": address, "dcops_device_class": device_class,
                           "dcops_snmp_profile": profile}
    if uplinks:
        out["dcops_wan_uplinks"] = list(uplinks)
    return out


DC_DEVICES: dict[str, dict[str, Any]] = {
    "primary-dc": {
        "dc1-core-sw1": _device("10.10.50.1", "core_switch", "cisco_switch"),
        "dc1-fw1": _device("10.10.50.3", "firewall", "fortigate"),
        "dc1-wan-rtr1": _device("10.10.50.5", "wan_router", "cisco_router",
                                "GigabitEthernet0/0/0", "GigabitEthernet0/0/1")},
    "backup-dc": {
        "dc2-core-sw1": _device("10.11.50.1", "core_switch", "cisco_switch"),
        "dc2-fw1": _device("10.11.50.3", "firewall", "fortigate"),
        "dc2-wan-rtr1": _device("10.11.50.5", "wan_router", "cisco_router",
                                "GigabitEthernet0/0/0")},
}

#: Comment headers of the written files ({province}, {code}, {units} filled in).
HEADERS = {
    "hosts.yml": """\
Starting inventory of {province} (dcops inventory scaffold).
Servers of both DCs and a router per commune, ward and special zone. The servers and
systems are EXAMPLES (example: true in systems.yml): replace them with the province's own.
A server's address is a free address of its zone subnet
10.<dc>.<zone block + system index>.0/24 (dcops.inventory.addressplan); a commune's router
is .1 of its LAN (sites.yml).""",
    "group_vars/all/main.yml": """\
Province-wide settings ({province}, official code {code}).
EXAMPLE: this inventory borrows the example province's published Vault keys and SNMP
credentials (inventories/VAULT-KEYS.md), so it declares dcops_example: true: every dcops
command warns and nothing touches real machines. Replace every secret (README.md, "Real
secrets") and delete dcops_example before using it for real. NTP servers are placeholders
in dc_infra's management zones; the SOC collector is the example soc1.""",
    "group_vars/all/sites.yml": """\
Sites of {province}: the two DCs and its {units} communes, wards and special zones
(official codes and names since 1 July 2025, from the vietnam-provinces library).
Commune LANs: one /26 per commune at 10.21.<n>.0/26 in official code order; the router is .1.
EXAMPLE: the DC coordinates and addresses are placeholders (about 37 km apart): replace them.""",
    "group_vars/all/systems.yml": """\
EXAMPLE information systems (example: true): two systems to show the shape of the model.
Replace them with the province's systems, their approved level (cấp độ), owner and flows.""",
}
