"""Two `dcops collect snmp --shard I/2` processes, real snmpd agents, a real Prometheus.

Both shards' /metrics together cover every lab device exactly once; Prometheus scrapes both as
`dcops collect snmp-targets` says (labels shard, shards) with the house noc.rules.yml (every
`for` shortened: promtool tests cover the real windows); shard 2 is stopped and SnmpShardDown
fires naming exactly the devices it polled, read back from its stale series.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from snmp_it_helpers import free_tcp_port, need, stop, wait_http

from dcops.collectors.snmp.shard import owner, scrape_configs
from dcops.errors import LabError
from dcops.inventory import load_inventory
from dcops.lab.snmp import agents_for_devices

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]
LAB = ROOT / "inventories" / "lab"
MON = ROOT / "monitoring"
DCOPS = [sys.executable, "-c", "from dcops.cli import main; main()"]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


def _until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _polled(url: str) -> str:
    """The /metrics text once a poll cycle has filled it, else ''."""
    text = _get(url)
    return text if "dcops_snmp_up{" in text else ""


def _series(text: str, name: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(name + "{")]


def _label(line: str, key: str) -> str:
    return line.split(f'{key}="', 1)[1].split('"', 1)[0]


def test_two_shards_cover_every_device_once_and_a_stopped_one_is_named(tmp_path: Path) -> None:
    need("snmpd", "prometheus")
    model = load_inventory(LAB)
    agents = agents_for_devices(model.devices.values(), tmp_path)
    try:
        for a in agents:
            a.start()
    except LabError as exc:
        for a in agents:
            a.stop()
        pytest.skip(f"lab SNMP ports busy (a lab is running?): {exc}")
    ports = [free_tcp_port(), free_tcp_port()]
    env = {**os.environ, "DCOPS_STATE_DIR": str(tmp_path / "state")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        shards = [subprocess.Popen(
            [*DCOPS, "collect", "snmp", "-i", str(LAB), "--shard", f"{i}/2", "--interval", "1",
             "--timeout", "0.5", "--listen", f"127.0.0.1:{port}", "--no-spool"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"shard{i}.log").open("wb"))
            for i, port in enumerate(ports, 1)]
        procs += shards
        owned: dict[str, list[str]] = {}
        for i, port in enumerate(ports, 1):
            url = f"http://127.0.0.1:{port}/metrics"
            wait_http(url, 60)
            text = _until(f"shard {i}'s first cycle", lambda u=url: _polled(u), 60)
            assert f'dcops_snmp_shard_info{{shard="{i}",shards="2"}} 1.0' in text
            ups = _series(text, "dcops_snmp_up")
            members = _series(text, "dcops_snmp_shard_device_info")
            owned[str(i)] = sorted(_label(ln, "device") for ln in members)
            assert sorted(_label(ln, "device") for ln in ups) == owned[str(i)]
            assert all(ln.endswith(" 1.0") for ln in ups), ups  # real agents answered
        every = owned["1"] + owned["2"]
        assert sorted(every) == sorted(model.devices)  # each device once, none missing
        assert owned["1"] and owned["2"]
        assert all(owner(d, 2) == int(i) for i, ds in owned.items() for d in ds)

        # Prometheus with the targets `dcops collect snmp-targets` makes, and the house rules
        rules = yaml.safe_load((MON / "prometheus" / "rules" / "noc.rules.yml").read_text())
        for g in rules["groups"]:
            for r in g["rules"]:
                r["for"] = "1s"
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
        prom_port = free_tcp_port()
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "scrape_configs": [{"job_name": "dcops-snmp", "honor_labels": True,
                                "static_configs": scrape_configs(
                                    [f"127.0.0.1:{p}" for p in ports])}]}))
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("wb")))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{prom}/-/ready")

        def query(q: str) -> list[dict[str, Any]]:
            body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q}))
            return list(json.loads(body)["data"]["result"])

        def members(shard: str) -> list[str]:
            return sorted(r["metric"]["device"] for r in query(
                f'dcops_snmp_shard_device_info{{shard="{shard}",shards="2"}}'))

        _until("both shards scraped with their devices",
               lambda: members("1") == owned["1"] and members("2") == owned["2"], 60)

        stop(shards[1])  # shard 2 stops: its series go stale, its devices are not polled

        def firing() -> list[dict[str, Any]]:
            alerts = json.loads(_get(f"{prom}/api/v1/alerts"))["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "SnmpShardDown"
                    and a["state"] == "firing"]

        (alert,) = _until("SnmpShardDown for shard 2", firing, 60)
        assert alert["labels"]["shard"] == "2" and alert["labels"]["shards"] == "2"
        assert alert["labels"]["instance"] == f"127.0.0.1:{ports[1]}"
        assert alert["labels"]["severity"] == "critical"
        desc = alert["annotations"]["description"]
        sites = {d.name: d.site for d in model.devices.values()}
        names = ", ".join(f"{d} ({sites[d]})" for d in owned["2"])
        assert f"{len(owned['2'])} devices not polled" in desc, desc
        assert desc.endswith(f"{names}."), desc  # exactly its devices, none of shard 1's
        assert members("2") == []  # stale now: the alert read them with last_over_time
        assert not [a for a in json.loads(_get(f"{prom}/api/v1/alerts"))["data"]["alerts"]
                    if a["labels"]["alertname"] == "SnmpCollectorDown"]
    finally:
        for p in procs:
            stop(p)
        for a in agents:
            a.stop()
