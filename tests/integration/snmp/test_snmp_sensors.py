"""Temperature and CPU from hand-written device records (ENTITY-SENSOR, CISCO-ENVMON, FortiGate).

The records in data/ are snmpsim .snmprec files written for these tests: a Catalyst 9300 with
ENTITY-SENSOR-MIB rows of several types, scales and precisions plus its CISCO-ENVMON and
CISCO-PROCESS tables, and a FortiGate 100F with its FORTINET-FORTIGATE-MIB system scalars.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import Poller
from dcops.collectors.snmp.profiles import load_profiles
from dcops.errors import LabError
from dcops.lab.snmp import Snmpsim, free_udp_ports
from dcops.model.site import Device, Secret, SnmpCredentials

pytestmark = pytest.mark.integration
PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"
DATA = Path(__file__).parent / "data"


def _device(name: str, port: int, profile: str) -> Device:
    return Device(name, "127.0.0.1", "primary-dc", "core_switch", profile,
                  SnmpCredentials("2c", port, community=Secret(name)))


def test_sensor_tables_become_temperature_and_cpu_series(tmp_path: Path) -> None:
    try:
        sim = Snmpsim(tmp_path, free_udp_ports(1)[0], {
            "c9300": DATA / "cisco-c9300.snmprec",
            "fgt100f": DATA / "fortigate-100f.snmprec"}).start()
    except LabError as exc:
        pytest.skip(str(exc))
    profiles = load_profiles(PROFILES)
    devices = [_device("c9300", sim.port, "cisco_switch"),
               _device("fgt100f", sim.port, "fortigate")]
    poller = Poller(devices, profiles, allow_v2c=True, timeout=5.0, retries=1)
    try:
        samples = asyncio.run(poller.poll_all())
    finally:
        poller.close()
        sim.stop()
    assert all(s.ok for s in samples), [(s.device.name, s.error) for s in samples]
    metrics = SnmpMetrics(profiles)
    metrics.update(samples, 0.0)
    reg = CollectorRegistry()
    reg.register(metrics)
    lines = generate_latest(reg).decode().splitlines()
    temps = sorted(ln for ln in lines if ln.startswith("snmp_temperature_celsius{"))
    assert temps == [
        # CISCO-ENVMON: its own index, Gauge32 degrees as they are
        'snmp_temperature_celsius{ciscoEnvMonTemperatureStatusIndex="1",device="c9300",'
        'sensor="Switch 1 - Inlet Temp Sensor",site="primary-dc"} 33.0',
        'snmp_temperature_celsius{ciscoEnvMonTemperatureStatusIndex="2",device="c9300",'
        'sensor="Switch 1 - HotSpot Temp Sensor",site="primary-dc"} 48.0',
        # ENTITY-SENSOR: units/precision 0, units/precision 1 (715 -> 71.5), milli (41250 -> 41.25);
        # the fan (rpm, type 10) and the 12 V rail (voltsDC, type 4) are filtered out
        'snmp_temperature_celsius{device="c9300",entPhysicalIndex="1005",'
        'sensor="Switch 1 - Inlet Temp Sensor",site="primary-dc"} 34.0',
        'snmp_temperature_celsius{device="c9300",entPhysicalIndex="1006",'
        'sensor="Switch 1 - HotSpot Temp Sensor",site="primary-dc"} 71.5',
        'snmp_temperature_celsius{device="c9300",entPhysicalIndex="1007",'
        'sensor="Switch 1 - PSU1 Temp Sensor",site="primary-dc"} 41.25',
    ]
    cpu = sorted(ln for ln in lines if ln.startswith("snmp_cpu_load_percent{"))
    assert cpu == [
        'snmp_cpu_load_percent{cpmCPUTotalIndex="19",device="c9300",site="primary-dc"} 23.0',
        'snmp_cpu_load_percent{device="fgt100f",site="primary-dc"} 17.0',
    ]
    assert 'snmp_memory_used_percent{device="fgt100f",site="primary-dc"} 58.0' in lines
    assert 'snmp_if_in_errors_total{device="c9300",ifName="Gi1/0/1",site="primary-dc"} 3.0' \
        in lines
    assert 'snmp_if_in_octets_total{device="c9300",ifName="Gi1/0/1",site="primary-dc"} ' \
        '1.23456789012e+11' in lines
    assert 'snmp_uptime_seconds{device="c9300",site="primary-dc"} 86400.0' in lines
