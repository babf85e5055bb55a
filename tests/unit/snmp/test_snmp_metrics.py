"""Counter wraps and restarts, profiles, v3 policy, exposition and state-change events."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.events import StateTracker
from dcops.collectors.snmp.metrics import CounterTracker, SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample, SnmpConfigError, target_for
from dcops.collectors.snmp.profiles import load_profiles
from dcops.errors import ConfigError
from dcops.model.site import Device, Secret, SnmpCredentials

PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"


def test_counter32_wrap_adds_the_modulus() -> None:
    c = CounterTracker()
    assert c.update(("d", "x"), 2**32 - 10, "counter32", 100.0) == 2**32 - 10
    assert c.update(("d", "x"), 5, "counter32", 200.0) == 2**32 + 5


def test_agent_restart_counts_from_zero_not_a_wrap() -> None:
    c = CounterTracker()
    c.update(("d", "x"), 1000, "counter64", 5000.0)
    assert c.update(("d", "x"), 30, "counter64", 10.0) == 1030


def test_every_inventory_profile_resolves() -> None:
    profiles = load_profiles(PROFILES)
    for name in ("cisco_switch", "cisco_router", "fortigate", "net_snmp"):
        tables = {t.name for t in profiles[name].tables}
        assert "ifTable" in tables
        assert {s.name for s in profiles[name].scalars} >= {"sysUpTime", "sysName"}


def test_profile_with_symbolic_oid_names_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "p.yml"
    f.write_text("profiles:\n  x:\n    scalars:\n      - {name: a, oid: SNMPv2-MIB::sysName.0}\n")
    with pytest.raises(ConfigError, match=r"p\.yml.*profiles\.x\.scalars\[0\]"):
        load_profiles(f)


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "p.yml"
    f.write_text("profiles:\n  a: {include: [b]}\n  b: {include: [a]}\n")
    with pytest.raises(ConfigError, match="include cycle"):
        load_profiles(f)


def _dev(version: str = "3", **kw: object) -> Device:
    cred = SnmpCredentials(version, 161, "noc", "SHA", Secret("a" * 10), "AES", Secret("p" * 10),
                           community=Secret("c"))
    return Device("sw1", "127.0.0.1", "dc1", "core_switch", "cisco_switch", cred, **kw)  # type: ignore[arg-type]


def test_v2c_is_refused_outside_the_lab() -> None:
    with pytest.raises(SnmpConfigError, match="allow_snmp_v2c"):
        target_for(_dev("2c"), allow_v2c=False)
    assert target_for(_dev("2c"), allow_v2c=True).version == "2c"
    t = target_for(_dev("3"), allow_v2c=False)
    assert t.user is not None and t.user.flags == 3  # authPriv


def _sample(ok: bool, oper: int = 1, octets: int = 100, uptime: int = 1000) -> DeviceSample:
    d = _dev(wan_uplinks=("Gi0/0",))
    s = DeviceSample(d, ok, 1.7e9, 0.01, "" if ok else "timeout", "" if ok else "no response")
    if ok:
        s.scalars = {"sysUpTime": ber.Value(ber.TIMETICKS, uptime),
                     "sysName": ber.Value(ber.OCTET_STRING, b"sw1")}
        s.tables = {"ifTable": {"1": {
            "1.3.6.1.2.1.31.1.1.1.1": ber.Value(ber.OCTET_STRING, b"Gi0/0"),
            "1.3.6.1.2.1.2.2.1.7": ber.Value(ber.INTEGER, 1),
            "1.3.6.1.2.1.2.2.1.8": ber.Value(ber.INTEGER, oper),
            "1.3.6.1.2.1.31.1.1.1.6": ber.Value(ber.COUNTER64, octets)}}}
    return s


def test_exposition_has_site_device_ifname_and_health() -> None:
    m = SnmpMetrics(load_profiles(PROFILES), {"dc1": "primary_dc"})
    m.update([_sample(True)], 0.1)
    m.update([_sample(True, octets=50, uptime=10)], 0.1)  # restart: 100 + 50
    reg = CollectorRegistry()
    reg.register(m)
    text = generate_latest(reg).decode()
    assert 'snmp_if_in_octets_total{device="sw1",ifName="Gi0/0",site="dc1"} 150.0' in text
    assert 'dcops_snmp_up{device="sw1",site="dc1"} 1.0' in text
    assert 'snmp_if_oper_status{device="sw1",ifName="Gi0/0",site="dc1"} 1.0' in text
    assert 'dcops_snmp_wan_uplink_info{device="sw1",ifName="Gi0/0",site="dc1",' \
           'site_kind="primary_dc"} 1.0' in text
    m.update([_sample(False)], 0.1)
    text = generate_latest(reg).decode()
    assert 'dcops_snmp_up{device="sw1",site="dc1"} 0.0' in text
    assert 'dcops_snmp_errors_total{device="sw1",kind="timeout",site="dc1"} 1.0' in text


def test_state_changes_become_events_once() -> None:
    st = StateTracker()
    assert st.observe([_sample(True)]) == []
    down = st.observe([_sample(True, oper=2)])
    assert [e.fields["event.action"] for e in down] == ["interface-down"]
    assert down[0].fields["interface.name"] == "Gi0/0"
    assert down[0].logsource.service == "poller"
    assert st.observe([_sample(True, oper=2)]) == []
    gone = st.observe([_sample(False)])
    assert [e.fields["event.action"] for e in gone] == ["device-unreachable"]
    assert gone[0].fields["error.type"] == "timeout"
    back = st.observe([_sample(True, oper=1)])
    assert [e.fields["event.action"] for e in back] == ["device-reachable", "interface-up"]


def _hostile_sample() -> DeviceSample:
    """Label values that need escaping, an empty ifName (fallback), a big counter."""
    d = _dev(wan_uplinks=('Gi"0\\0',))
    s = DeviceSample(d, True, 1.7e9, 0.01)
    s.scalars = {"sysUpTime": ber.Value(ber.TIMETICKS, 123456789),
                 "sysName": ber.Value(ber.OCTET_STRING, b'sw"1\\\nx'),
                 "sysDescr": ber.Value(ber.OCTET_STRING, "Thiết bị ".encode() + b"\xff")}
    s.tables = {"ifTable": {
        "1": {"1.3.6.1.2.1.31.1.1.1.1": ber.Value(ber.OCTET_STRING, b'Gi"0\\0'),
              "1.3.6.1.2.1.2.2.1.8": ber.Value(ber.INTEGER, 1),
              "1.3.6.1.2.1.31.1.1.1.6": ber.Value(ber.COUNTER64, 2**64 - 1)},
        "2": {"1.3.6.1.2.1.31.1.1.1.1": ber.Value(ber.OCTET_STRING, b""),
              "1.3.6.1.2.1.2.2.1.2": ber.Value(ber.OCTET_STRING, b"eth\n1"),
              "1.3.6.1.2.1.2.2.1.8": ber.Value(ber.INTEGER, 2),
              "1.3.6.1.2.1.31.1.1.1.15": ber.Value(ber.GAUGE32, 10000)},
        "3": {"1.3.6.1.2.1.2.2.1.8": ber.Value(ber.INTEGER, 7)}}}
    return s


def test_written_text_is_what_prometheus_client_writes_for_the_same_series() -> None:
    """text() is served as is: parsed by prometheus_client and written again by it, every
    byte comes back (escaping, label order, float form, counters' _total, HELP/TYPE)."""
    from dcops.collectors.snmp.shard import Shard

    m = SnmpMetrics(load_profiles(PROFILES), {"dc1": "primary_dc"}, Shard(1, 2))
    m.update([_hostile_sample(), _sample(False)], 0.25)
    text = m.text()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(m)
    assert generate_latest(reg) == text
    lines = text.decode().splitlines()
    info = [ln for ln in lines if ln.startswith("snmp_device_info{")]
    assert len(info) == 1
    assert info[0].endswith(  # no vendor label: its value is empty
        ',sysDescr="Thiết bị \ufffd",sysName="sw\\"1\\\\\\nx"} 1.0')
    assert 'snmp_if_oper_status{device="sw1",ifName="Gi\\"0\\\\0",site="dc1"} 1.0' in lines
    assert 'snmp_if_oper_status{device="sw1",ifName="eth\\n1",site="dc1"} 2.0' in lines
    assert 'snmp_if_oper_status{device="sw1",ifName="3",site="dc1"} 7.0' in lines
    assert 'snmp_if_in_octets_total{device="sw1",ifName="Gi\\"0\\\\0",site="dc1"} ' \
           '1.8446744073709552e+19' in lines
    assert 'snmp_if_speed_bits_per_second{device="sw1",ifName="eth\\n1",site="dc1"} 1e+10' \
           in lines
    assert "# TYPE snmp_if_in_octets_total counter" in lines
    assert "dcops_snmp_cycle_duration_seconds 0.25" in lines
    assert 'dcops_snmp_shard_info{shard="1",shards="2"} 1.0' in lines
    # a family no device answered for is left out, not written as a bare HELP/TYPE
    assert not any("snmp_if_out_errors" in ln for ln in lines)


def test_a_duplicate_series_keeps_its_first_sample() -> None:
    s = _sample(True)
    twin = _sample(True, oper=2)
    m = SnmpMetrics(load_profiles(PROFILES), {"dc1": "primary_dc"})
    m.update([s, twin], 0.1)  # the same device twice: one series each, the first value
    lines = m.text().decode().splitlines()
    oper = [ln for ln in lines if ln.startswith("snmp_if_oper_status{")]
    assert oper == ['snmp_if_oper_status{device="sw1",ifName="Gi0/0",site="dc1"} 1.0']


def test_metrics_server_serves_registry_then_texts_as_text_format() -> None:
    import gzip
    import urllib.request

    from prometheus_client import Gauge

    from dcops.collectors.snmp.service import MetricsServer

    reg = CollectorRegistry(auto_describe=False)
    Gauge("dcops_other", "another collector", registry=reg).set(3)
    m = SnmpMetrics(load_profiles(PROFILES), {"dc1": "primary_dc"})
    m.update([_sample(True)], 0.1)
    server = MetricsServer(reg, "127.0.0.1", 0, texts=[m.text])
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            body = r.read()
        assert body == generate_latest(reg) + m.text()
        assert body.startswith(b"# HELP dcops_other")
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip",
                                                   "Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(r.read()) == body  # always text 0.0.4, never OpenMetrics
    finally:
        server.close()


@pytest.mark.parametrize(("body", "key"), [
    ("tables:\n      - {name: t, index_label: if-index, columns: []}", r"tables\[0\]\.index_label"),
    ("tables:\n      - {name: t, keep_labels: [a b], columns: []}", r"tables\[0\]\.keep_labels"),
    ("tables:\n      - name: t\n        labels: {'x.y': 1.3.6.1.2.1.2.2.1.2}\n        columns: []",
     r"tables\[0\]\.labels"),
    ("tables:\n      - name: t\n        columns: [{metric: if-speed, oid: 1.3.6.1.2.1.2.2.1.5}]",
     r"tables\[0\]\.columns\[0\]"),
    ("scalars:\n      - {name: up time, oid: 1.3.6.1.2.1.1.3.0}", r"scalars\[0\]"),
])
def test_names_the_text_format_cannot_carry_are_refused_at_load(tmp_path: Path, body: str,
                                                                key: str) -> None:
    """The exposition is written as is, so a name Prometheus would reject never gets there."""
    f = tmp_path / "p.yml"
    f.write_text(f"profiles:\n  x:\n    {body}\n")
    with pytest.raises(ConfigError, match=rf"p\.yml.*profiles\.x\.{key}.*not a Prometheus"):
        load_profiles(f)
