"""Sensor decoding on decoded rows: ENTITY-SENSOR scale and precision, celsius filter, vendors."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample
from dcops.collectors.snmp.profiles import load_profiles
from dcops.model.site import Device, Secret, SnmpCredentials

PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"
ENT = "1.3.6.1.2.1.99.1.1.1."
NAME = "1.3.6.1.2.1.47.1.1.1.1.7"
ENVMON = "1.3.6.1.4.1.9.9.13.1.3.1."


def _i(n: int) -> ber.Value:
    return ber.Value(ber.INTEGER, n)


def _sensor(kind: int, scale: int, precision: int, value: int, name: str) -> dict[str, ber.Value]:
    return {ENT + "1": _i(kind), ENT + "2": _i(scale), ENT + "3": _i(precision),
            ENT + "4": _i(value), NAME: ber.Value(ber.OCTET_STRING, name.encode())}


def _lines(profile: str, scalars: dict[str, ber.Value],
           tables: dict[str, dict[str, dict[str, ber.Value]]]) -> list[str]:
    profiles = load_profiles(PROFILES)
    dev = Device("d1", "192.0.2.1", "primary-dc", "core_switch", profile,
                 SnmpCredentials("2c", 161, community=Secret("x")))
    m = SnmpMetrics(profiles)
    m.update([DeviceSample(dev, True, time.time(), 0.1, scalars=scalars, tables=tables)], 0.1)
    reg = CollectorRegistry()
    reg.register(m)
    return generate_latest(reg).decode().splitlines()


def _temps(lines: list[str]) -> list[str]:
    return sorted(ln for ln in lines if ln.startswith("snmp_temperature_celsius{"))


def test_entity_sensor_scale_precision_and_celsius_filter() -> None:
    rows = {"1": _sensor(8, 9, 0, 41, "inlet"),         # units, no decimals
            "2": _sensor(8, 9, 2, 4725, "cpu"),         # 47.25
            "3": _sensor(8, 8, 0, 38500, "asic"),       # milli: 38.5
            "4": _sensor(8, 9, -1, 5, "coarse"),        # precision -1: 50
            "5": _sensor(10, 9, 0, 6000, "fan"),        # rpm: not a temperature
            "6": _sensor(7, 9, 0, 40, "fahrenheit")}    # fahrenheit(7): not celsius
    got = _temps(_lines("generic", {}, {"entPhySensorTable": rows}))
    assert got == [
        'snmp_temperature_celsius{device="d1",entPhysicalIndex="1",sensor="inlet",'
        'site="primary-dc"} 41.0',
        'snmp_temperature_celsius{device="d1",entPhysicalIndex="2",sensor="cpu",'
        'site="primary-dc"} 47.25',
        'snmp_temperature_celsius{device="d1",entPhysicalIndex="3",sensor="asic",'
        'site="primary-dc"} 38.5',
        'snmp_temperature_celsius{device="d1",entPhysicalIndex="4",sensor="coarse",'
        'site="primary-dc"} 50.0',
    ]


def test_cisco_envmon_is_labelled_by_its_own_index_beside_entity_sensor() -> None:
    envmon = {"1": {ENVMON + "2": ber.Value(ber.OCTET_STRING, b"Inlet"),
                    ENVMON + "3": ber.Value(ber.GAUGE32, 36)}}
    ent = {"1": _sensor(8, 9, 0, 36, "Inlet")}  # the same index number in the other MIB
    got = _temps(_lines("cisco_switch", {}, {"ciscoEnvMonTemperatureStatusTable": envmon,
                                             "entPhySensorTable": ent}))
    assert got == [
        'snmp_temperature_celsius{ciscoEnvMonTemperatureStatusIndex="1",device="d1",'
        'sensor="Inlet",site="primary-dc"} 36.0',
        'snmp_temperature_celsius{device="d1",entPhysicalIndex="1",sensor="Inlet",'
        'site="primary-dc"} 36.0',
    ]
    assert not any("entPhysicalIndex" in ln and "ciscoEnvMon" in ln for ln in got)


def test_fortigate_cpu_scalar_and_host_resources_rows_keep_their_own_labels() -> None:
    scalars = {"fgSysCpuUsage": ber.Value(ber.GAUGE32, 12),
               "fgSysMemUsage": ber.Value(ber.GAUGE32, 64)}
    hr = {"196608": {"1.3.6.1.2.1.25.3.3.1.2": _i(80)},
          "196609": {"1.3.6.1.2.1.25.3.3.1.2": _i(90)}}
    lines = _lines("fortigate", scalars, {"hrProcessorTable": hr})
    cpu = sorted(ln for ln in lines if ln.startswith("snmp_cpu_load_percent{"))
    assert cpu == [
        'snmp_cpu_load_percent{device="d1",hrDeviceIndex="196608",site="primary-dc"} 80.0',
        'snmp_cpu_load_percent{device="d1",hrDeviceIndex="196609",site="primary-dc"} 90.0',
        'snmp_cpu_load_percent{device="d1",site="primary-dc"} 12.0',
    ]
    assert 'snmp_memory_used_percent{device="d1",site="primary-dc"} 64.0' in lines
    assert 'snmp_cpu_load_percent{device="d1",site="primary-dc"} 80.0' not in lines
