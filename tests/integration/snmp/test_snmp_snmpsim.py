"""Realistic devices: walks of a D-Link switch and an IBM Linux server (snmpsim-data) polled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.snmp.events import StateTracker
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import Poller
from dcops.collectors.snmp.profiles import load_profiles
from dcops.lab.snmp import Snmpsim, free_udp_ports, snmpsim_data_dir
from dcops.model.site import Device, Secret, SnmpCredentials

pytestmark = pytest.mark.integration
PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"


def test_recorded_switch_and_server(tmp_path: Path) -> None:
    data = snmpsim_data_dir()
    if data is None:
        pytest.skip("snmpsim-data not installed")
    sim = Snmpsim(tmp_path, free_udp_ports(1)[0], {
        "dlink-sw": data / "net" / "switch" / "dlink-des3200.snmprec",
        "ibm-srv": data / "host" / "linux" / "ibm-x3550-m3.snmprec"}).start()
    sw = _device("dlink-sw", sim.port, "generic")
    srv = _device("ibm-srv", sim.port, "net_snmp")
    profiles = load_profiles(PROFILES)
    poller = Poller([sw, srv], profiles, allow_v2c=True, timeout=5.0, retries=1)
    try:
        samples = {s.device.name: s for s in asyncio.run(poller.poll_all())}
    finally:
        poller.close()
        sim.stop()
    assert all(s.ok for s in samples.values()), {n: s.error for n, s in samples.items()}
    ifaces = samples["dlink-sw"].tables["ifTable"]
    assert len(ifaces) >= 18  # DES-3200-18: 18 ports plus system interfaces
    m = SnmpMetrics(profiles)
    m.update(list(samples.values()), 0.0)
    reg = CollectorRegistry()
    reg.register(m)
    text = generate_latest(reg).decode()
    assert 'sysDescr="DES-3200-18 Fast Ethernet Switch"' in text
    assert "snmp_cpu_load_percent{device=\"ibm-srv\"" in text
    assert "snmp_storage_size_bytes{device=\"ibm-srv\",hrStorageDescr=" in text
    down = StateTracker().observe(list(samples.values()))
    assert down, "the recorded switch has admin-up ports without link"
    assert {e.fields["event.action"] for e in down} == {"interface-down"}



def _device(name: str, port: int, profile: str) -> Device:
    """snmpsim tells recorded devices apart by community: the device name."""
    return Device(name, "127.0.0.1", "bien-hoa", "switch", profile,
                  SnmpCredentials("2c", port, community=Secret(name)))
