"""Helpers of the iac tests: a small province built directly as model objects (no inventory files).

A module of its own (not conftest.py) so that tests import it by a unique name."""

from __future__ import annotations

from dataclasses import replace

from dcops.model.site import (
    Device,
    Flow,
    Host,
    Settings,
    Site,
    SiteKind,
    SiteModel,
    SourceRef,
    System,
    Zone,
)

SYSTEMS_YML = "group_vars/all/systems.yml"


def _host(name: str, addr: str, system: str, zone: Zone, ha: str = "", gb: int = 40,
          site: str = "primary-dc") -> Host:
    return Host(name=name, address=addr, site=site, systems=(system,), zone=zone, ha_group=ha,
                flavor="m1.large", volume_gb=gb, role=f"{system}_{zone.value}")


def build_model() -> SiteModel:
    """Two DCs, two districts, a level-3 DR system, a level-2 DR system, a level-4 non-DR one."""
    sites = {
        "primary-dc": Site("primary-dc", SiteKind.PRIMARY_DC, "Primary DC", "TTDL chính",
                           subnets=("10.10.0.0/16",)),
        "backup-dc": Site("backup-dc", SiteKind.BACKUP_DC, "Backup DC", "TTDL dự phòng",
                          subnets=("10.11.0.0/16",)),
        "bien-hoa": Site("bien-hoa", SiteKind.DISTRICT, "Biên Hòa", "TP Biên Hòa",
                         subnets=("10.20.1.0/24",)),
        "tan-phu": Site("tan-phu", SiteKind.DISTRICT, "Tân Phú", "Huyện Tân Phú",
                        subnets=("10.20.3.0/24",)),
        "an-hoa": Site("an-hoa", SiteKind.COMMUNE, "An Hòa", "Xã An Hòa", parent="bien-hoa",
                       subnets=("10.30.1.0/24",)),
    }
    systems = {
        "lgsp": System(
            "lgsp", "LGSP", "Nền tảng LGSP", 3, "DIC", "primary-dc", dr=True,
            zones=(Zone.DMZ, Zone.APP, Zone.DB, Zone.MGMT), public_ports=(443,),
            flows=(Flow(Zone.DMZ, Zone.APP, 443), Flow(Zone.APP, Zone.DB, 5432),
                   Flow(Zone.MGMT, Zone.APP, 22), Flow(Zone.MGMT, Zone.DB, 22)),
            source=SourceRef(SYSTEMS_YML, 7)),
        "docmgmt": System(
            "docmgmt", "Documents", "Quản lý văn bản", 2, "DoHA", "primary-dc", dr=True,
            zones=(Zone.APP, Zone.DB),
            flows=(Flow(Zone.APP, Zone.DB, 5432),
                   Flow(Zone.APP, Zone.APP, 443, dest_system="lgsp"),
                   Flow(Zone.MGMT, Zone.APP, 22, source_system="dc_infra")),
            source=SourceRef(SYSTEMS_YML, 30)),
        "dc_infra": System(
            "dc_infra", "DC infrastructure", "Hạ tầng TTDL", 4, "DTC", "primary-dc",
            zones=(Zone.APP, Zone.MGMT, Zone.DEVMGMT),
            flows=(Flow(Zone.MGMT, Zone.DEVMGMT, 22),
                   Flow(Zone.DEVMGMT, Zone.MGMT, 162, protocol="udp")),
            source=SourceRef(SYSTEMS_YML, 50)),
    }
    hosts = [
        _host("lgsp-gw1", "10.10.10.11", "lgsp", Zone.DMZ, "lgsp-gw"),
        _host("lgsp-gw2", "10.10.10.12", "lgsp", Zone.DMZ, "lgsp-gw"),
        _host("lgsp-app1", "10.10.20.11", "lgsp", Zone.APP, "lgsp-app", 100),
        _host("lgsp-app2", "10.10.20.12", "lgsp", Zone.APP, "lgsp-app", 100),
        _host("lgsp-db1", "10.10.30.11", "lgsp", Zone.DB, gb=500),
        _host("docmgmt-app1", "10.10.21.41", "docmgmt", Zone.APP),
        _host("docmgmt-db1", "10.10.31.41", "docmgmt", Zone.DB, gb=200),
        _host("bastion1", "10.10.42.11", "dc_infra", Zone.MGMT, gb=0),
        _host("backup1", "10.11.42.11", "dc_infra", Zone.MGMT, gb=2000, site="backup-dc"),
    ]
    devices = {
        "bien-hoa-rtr1": Device("bien-hoa-rtr1", "10.20.1.1", "bien-hoa", "district_router",
                                "cisco_router", None),
    }
    return SiteModel(settings=Settings(province="Test", environment="test"), sites=sites,
                     systems=systems, hosts={h.name: h for h in hosts}, devices=devices,
                     inventory_dir="inventories/test")


def with_system(model: SiteModel, system: System, *hosts: Host) -> SiteModel:
    """A copy of the model with one more system (and its hosts)."""
    return replace(model, systems={**model.systems, system.name: system},
                   hosts={**model.hosts, **{h.name: h for h in hosts}})
