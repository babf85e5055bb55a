"""Polling real snmpd agents: v2c and v3 authPriv, a dead device among live ones, the CLI."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from snmp_it_helpers import v2c_device, v3_device

from dcops.collectors.snmp.events import JsonlSink
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample, Poller
from dcops.collectors.snmp.profiles import load_profiles
from dcops.collectors.snmp.service import PollService
from dcops.lab.snmp import Snmpd

pytestmark = pytest.mark.integration
PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"


def test_v2c_and_v3_authpriv_poll_with_a_dead_device(snmpd: Snmpd, tmp_path: Path) -> None:
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a device that never answers
    hole.bind(("127.0.0.1", 0))
    p = snmpd.ports
    devices = [v2c_device("sw1", p[0]), v2c_device("sw2", p[1]),
               v3_device("fw1", p[2], 0), v3_device("fw2", p[3], 1),
               v2c_device("dead-rtr", hole.getsockname()[1], site="bien-hoa")]
    profiles = load_profiles(PROFILES)
    poller = Poller(devices, profiles, allow_v2c=True, timeout=1.0, retries=1)
    metrics = SnmpMetrics(profiles, {"bien-hoa": "commune"})
    sink = JsonlSink(tmp_path / "events.jsonl")
    service = PollService(poller, metrics, sink)
    try:
        samples = {s.device.name: s for s in asyncio.run(service.cycle())}
    finally:
        poller.close()
        hole.close()
    for name in ("sw1", "sw2", "fw1", "fw2"):
        assert samples[name].ok, samples[name].error
        assert samples[name].duration < 1.5  # the dead device's 2 s never delayed the others
        assert samples[name].tables["ifTable"], "ifTable walked"
    dead = samples["dead-rtr"]
    assert not dead.ok and dead.error_kind == "timeout"
    assert "no response" in dead.error
    reg = CollectorRegistry()
    reg.register(metrics)
    text = generate_latest(reg).decode()
    assert 'dcops_snmp_up{device="fw2",site="backup-dc"} 1.0' in text
    assert 'dcops_snmp_up{device="dead-rtr",site="bien-hoa"} 0.0' in text
    assert 'snmp_if_in_octets_total{device="fw1",ifName="lo",site="backup-dc"}' in text
    assert 'dcops_snmp_errors_total{device="dead-rtr",kind="timeout",site="bien-hoa"} 1.0' in text
    events = (tmp_path / "events.jsonl").read_text()
    assert '"event.action": "device-unreachable"' in events and "dead-rtr" in events


def test_wrong_v3_key_is_reported_as_auth(snmpd: Snmpd) -> None:
    from dataclasses import replace

    from dcops.model.site import Secret

    good = v3_device("fw1", snmpd.ports[0])
    assert good.snmp is not None
    bad = replace(good, snmp=replace(good.snmp, auth_key=Secret("not-the-key")))
    poller = Poller([bad], load_profiles(PROFILES), allow_v2c=False, timeout=0.5, retries=0)
    t0 = time.monotonic()
    try:
        (sample,) = asyncio.run(poller.poll_all())
    finally:
        poller.close()
    assert sample.error_kind == "auth"
    assert "wrong digest" in sample.error
    assert time.monotonic() - t0 < 3


def test_v3_protocol_matrix_against_snmpd(tmp_path: Path) -> None:
    """SHA-1/256/512 with AES-128/192/256 (AES-192/256 keys extended as net-snmp does)."""
    from dcops.collectors.snmp.client import SnmpClient, Target
    from dcops.collectors.snmp.usm import UsmUser
    from dcops.lab.snmp import LabV3User, free_udp_ports

    users = (LabV3User("u1", "SHA", "authpass111", "AES-256", "privpass111"),
             LabV3User("u2", "SHA-512", "authpass222", "AES-192", "privpass222"),
             LabV3User("u3", "SHA-256", "authpass333", "AES-256", "privpass333"),
             LabV3User("u4", "SHA-224", "authpass444", "AES", "privpass444"))
    port = free_udp_ports(1)[0]

    async def get_all() -> list[bytes]:
        out = []
        for u in users:
            c = SnmpClient(Target("127.0.0.1", port, "3", user=UsmUser(
                u.name, u.auth_protocol, u.auth_password, u.priv_protocol, u.priv_password),
                timeout=1.0, retries=1))
            try:
                out.append((await c.get(["1.3.6.1.2.1.1.5.0"]))["1.3.6.1.2.1.1.5.0"].value)
            finally:
                c.close()
        return out

    with Snmpd(tmp_path / "snmpd", [port], users=users, sys_name="matrix"):
        assert asyncio.run(get_all()) == [b"matrix"] * len(users)


def test_v3_device_replaced_with_new_engine_id_is_rediscovered(tmp_path: Path) -> None:
    from dcops.collectors.snmp.client import SnmpClient
    from dcops.collectors.snmp.poller import target_for
    from dcops.lab.snmp import free_udp_ports

    port = free_udp_ports(1)[0]
    client = SnmpClient(target_for(v3_device("fw1", port), allow_v2c=False))

    async def name() -> object:
        return (await client.get(["1.3.6.1.2.1.1.5.0"]))["1.3.6.1.2.1.1.5.0"].value

    loop = asyncio.new_event_loop()
    try:
        with Snmpd(tmp_path / "a", [port], sys_name="old", engine_id="dcops-old-engine"):
            assert loop.run_until_complete(name()) == b"old"
        first = client.engine.engine_id
        with Snmpd(tmp_path / "b", [port], sys_name="new", engine_id="dcops-new-engine"):
            assert loop.run_until_complete(name()) == b"new"
        assert client.engine.engine_id != first
    finally:
        client.close()
        loop.close()


def test_v1_device_is_walked_with_getnext(snmpd: Snmpd) -> None:
    from dcops.model.site import Device, Secret, SnmpCredentials

    old = Device("old-rtr", "127.0.0.1", "tan-phu", "district_router", "cisco_router",
                 SnmpCredentials("1", snmpd.ports[0], community=Secret(snmpd.community)))
    poller = Poller([old], load_profiles(PROFILES), allow_v2c=True, timeout=1.0, retries=1)
    try:
        (s,) = asyncio.run(poller.poll_all())
    finally:
        poller.close()
    assert s.ok, s.error
    assert s.scalars["sysName"].value == b"lab-snmpd"
    rows = s.tables["ifTable"]
    assert rows  # walked row by row with GETNEXT
    first = next(iter(rows.values()))
    assert "1.3.6.1.2.1.2.2.1.8" in first  # ifOperStatus
    assert "1.3.6.1.2.1.31.1.1.1.6" not in first  # no Counter64 in v1: absent, not an error


def test_more_dead_devices_than_the_concurrency_limit_never_starve_live_ones(
        snmpd: Snmpd) -> None:
    """6 silent devices listed first, a limit of 2: the 4 live snmpd devices still finish early.

    Without the slot release a dead device holds its slot for timeout x (retries+1) = 3 s, so the
    live devices would start only after 3 waves (9 s).
    """
    holes = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    for h in holes:
        h.bind(("127.0.0.1", 0))
    dead = [v2c_device(f"dead{i}", h.getsockname()[1], site="bien-hoa")
            for i, h in enumerate(holes)]
    p = snmpd.ports
    live = [v2c_device("sw1", p[0]), v2c_device("sw2", p[1]), v3_device("fw1", p[2], 0),
            v3_device("fw2", p[3], 1)]
    poller = Poller([*dead, *live], load_profiles(PROFILES), allow_v2c=True, timeout=1.0,
                    retries=2, concurrency=2)

    def cycle() -> tuple[float, dict[str, DeviceSample]]:
        t0 = time.time()
        return t0, {s.device.name: s for s in asyncio.run(poller.poll_all())}

    try:
        first_t0, first = cycle()
        second_t0, second = cycle()
    finally:
        poller.close()
        for h in holes:
            h.close()
    for t0, samples, bound in ((first_t0, first, 3 * 1.0 + 1.5), (second_t0, second, 1.5)):
        for name in ("sw1", "sw2", "fw1", "fw2"):
            s = samples[name]
            assert s.ok, s.error
            finished = s.started + s.duration - t0
            assert finished < bound, (name, finished, bound)
        for d in dead:
            s = samples[d.name]
            assert not s.ok and s.error_kind == "timeout"
            assert "no response" in s.error
    assert poller.suspects == {d.name for d in dead}
