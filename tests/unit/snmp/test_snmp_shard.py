"""Rendezvous sharding of the poll list: one owner per device, adding a shard moves ~1/(n+1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample
from dcops.collectors.snmp.profiles import load_profiles
from dcops.collectors.snmp.shard import Shard, owner, parse_shard, select
from dcops.errors import ConfigError
from dcops.model.site import Device

PROFILES = Path(__file__).parents[3] / "monitoring" / "snmp" / "profiles.yml"

# The province's scale: 95 communes and wards with a router and a switch, plus DC gear.
DEVICES = ([f"xa-{i:03d}-rtr1" for i in range(95)] + [f"xa-{i:03d}-sw1" for i in range(95)]
           + [f"dc1-sw{i}" for i in range(6)] + [f"dc2-sw{i}" for i in range(4)])


def test_device_list_has_the_province_scale() -> None:
    assert len(set(DEVICES)) == 200


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_every_device_is_owned_by_exactly_one_shard(n: int) -> None:
    parts = [[d for d in DEVICES if Shard(i, n).owns(d)] for i in range(1, n + 1)]
    flat = [d for p in parts for d in p]
    assert sorted(flat) == sorted(DEVICES)  # each once: no device lost, none polled twice
    for p in parts:  # and the split is even enough to be worth it
        assert abs(len(p) - len(DEVICES) / n) < 0.35 * len(DEVICES) / n + 5


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_adding_a_shard_moves_only_devices_to_it_about_one_in_n_plus_1(n: int) -> None:
    before = {d: owner(d, n) for d in DEVICES}
    after = {d: owner(d, n + 1) for d in DEVICES}
    moved = [d for d in DEVICES if before[d] != after[d]]
    assert all(after[d] == n + 1 for d in moved)  # nothing moves between old shards
    expected = len(DEVICES) / (n + 1)
    assert abs(len(moved) - expected) < 0.35 * expected + 5, (len(moved), expected)


def test_ownership_is_stable_across_runs() -> None:
    # BLAKE2b of "shard\0device": no per-process hash seed, every poller agrees
    names = ("bh-rtr1", "dc1-core1", "lt-rtr1", "xa-000-rtr1", "dc2-fw1")
    assert [owner(d, 3) for d in names] == [1, 2, 3, 2, 3]  # pinned: changing it reshuffles
    assert owner("anything", 1) == 1


class _Dev:
    def __init__(self, name: str) -> None:
        self.name = name


def test_select_keeps_the_given_order_and_filters_by_name() -> None:
    devs = [_Dev(d) for d in DEVICES]
    mine = select(devs, Shard(2, 3))
    assert [d.name for d in mine] == [d for d in DEVICES if owner(d, 3) == 2]


@pytest.mark.parametrize(("text", "shard"), [("1/2", Shard(1, 2)), ("2/2", Shard(2, 2)),
                                             (" 3 / 5 ", Shard(3, 5)), ("1/1", Shard(1, 1))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize(("text", "why"), [
    ("3/2", "expected I between 1 and N=2"), ("0/2", "expected I between 1 and N=2"),
    ("1/0", "expected N between 1 and"), ("2", "expected I/N"), ("a/b", "expected I/N"),
    ("-1/2", "expected I/N"), ("1/99999", "expected N between 1 and 1024")])
def test_parse_shard_refuses_with_one_clear_reason(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_shard(text)


def test_a_shard_exposes_its_place_and_one_series_per_owned_device() -> None:
    mine = select([Device(d, "127.0.0.1", "bien-hoa", "router", "generic", None)
                   for d in DEVICES],
                  Shard(2, 3))
    metrics = SnmpMetrics(load_profiles(PROFILES), shard=Shard(2, 3))
    metrics.update([DeviceSample(d, i % 2 == 0, 0.0, 0.1) for i, d in enumerate(mine)], 1.0)
    reg = CollectorRegistry()
    reg.register(metrics)
    text = generate_latest(reg).decode()
    assert 'dcops_snmp_shard_info{shard="2",shards="3"} 1.0' in text
    owned = [ln for ln in text.splitlines() if ln.startswith("dcops_snmp_shard_device_info{")]
    assert len(owned) == len(mine)  # down devices too: the shard owns them all the same
    assert (f'dcops_snmp_shard_device_info{{device="{mine[0].name}",shard="2",shards="3",'
            'site="bien-hoa"} 1.0') in owned

    unsharded = SnmpMetrics(load_profiles(PROFILES))
    unsharded.update([DeviceSample(mine[0], True, 0.0, 0.1)], 1.0)
    reg = CollectorRegistry()
    reg.register(unsharded)
    assert "dcops_snmp_shard" not in generate_latest(reg).decode()


def test_list_devices_of_every_shard_cover_the_inventory_once() -> None:
    from typer.testing import CliRunner

    from dcops.cli import app

    lab = str(Path(__file__).parents[3] / "inventories" / "lab")
    runner = CliRunner()
    every = runner.invoke(app, ["collect", "snmp", "-i", lab, "--list-devices"])
    assert every.exit_code == 0, every.output
    parts = []
    for i in (1, 2, 3):
        r = runner.invoke(app, ["collect", "snmp", "-i", lab, "--shard", f"{i}/3",
                                "--list-devices"])
        assert r.exit_code == 0, r.output
        parts += r.stdout.split()
    assert len(every.stdout.split()) >= 3
    assert sorted(parts) == sorted(every.stdout.split())


def test_snmp_targets_gives_one_labelled_target_per_shard(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from dcops.cli import app

    out = tmp_path / "snmp.yml"
    r = CliRunner().invoke(app, ["collect", "snmp-targets", "--shards", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "dcops collect snmp -i INVENTORY --shard 3/3 --listen 127.0.0.1:9733" in text
    assert yaml.safe_load(text) == [
        {"targets": [f"127.0.0.1:{9730 + i}"], "labels": {"shard": str(i), "shards": "3"}}
        for i in (1, 2, 3)]
    r = CliRunner().invoke(app, ["collect", "snmp-targets", "--target", "10.0.0.1:9716",
                                 "--target", "10.0.0.2:9716"])
    assert [g["targets"] for g in yaml.safe_load(r.stdout)] == [["10.0.0.1:9716"],
                                                                 ["10.0.0.2:9716"]]
    r = CliRunner().invoke(app, ["collect", "snmp-targets", "--shards", "3",
                                 "--target", "10.0.0.1:9716"])
    assert r.exit_code == 1
    assert "expected one --target per shard" in str(r.exception)
