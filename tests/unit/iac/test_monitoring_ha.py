"""monitoring_server derives the Alertmanager cluster from the inventory's monitoring hosts."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from role_render import ROOT, render

TEMPLATES = ["etc/default/prometheus-alertmanager.j2", "etc/prometheus/prometheus.yml.j2",
             "etc/prometheus/cluster-tls/cluster-tls.yml.j2"]
TWO_DCS = """\
all:
  children:
    primary_dc: {vars: {dcops_site: primary-dc}, hosts: {soc1: {ansible_host: 10.10.44.21}}}
    backup_dc: {vars: {dcops_site: backup-dc}, hosts: {soc2: {ansible_host: 10.11.44.21}}}
    monitoring: {hosts: {soc2: {}, soc1: {}}}
"""


def _args(text: str) -> list[str]:
    [line] = [x for x in text.splitlines() if x.startswith("ARGS=")]
    return shlex.split(shlex.split(line.removeprefix("ARGS="))[0])


def test_two_monitoring_hosts_form_an_alertmanager_pair(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(TWO_DCS, encoding="utf-8")
    out = render(inv, "monitoring_server", TEMPLATES, "monitoring", tmp_path / "out",
                 {"monitoring_server_alertmanager_cluster_tls": True})
    assert sorted(out) == ["soc1", "soc2"]
    for me, ip, peer in (("soc1", "10.10.44.21", "10.11.44.21"),
                         ("soc2", "10.11.44.21", "10.10.44.21")):
        args = _args(out[me]["prometheus-alertmanager"])
        assert f"--web.listen-address={ip}:9093" in args
        assert f"--cluster.listen-address={ip}:9094" in args
        assert f"--cluster.advertise-address={ip}:9094" in args
        peers = [a for a in args if a.startswith("--cluster.peer=")]
        assert peers == [f"--cluster.peer={peer}:9094"]
        assert "--cluster.peer-timeout=15s" in args
        assert "--cluster.tls-config=/etc/prometheus/cluster-tls/cluster-tls.yml" in args
        prom = yaml.safe_load(out[me]["prometheus.yml"])
        [am] = prom["alerting"]["alertmanagers"]
        assert am["static_configs"] == [
            {"targets": ["10.10.44.21:9093", "10.11.44.21:9093"]}]
        tls = yaml.safe_load(out[me]["cluster-tls.yml"])
        assert tls["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
        assert tls["tls_client_config"]["insecure_skip_verify"] is False


def test_one_monitoring_host_runs_alertmanager_alone_on_loopback(tmp_path: Path) -> None:
    """The lab has one monitoring host: no gossip port at all, as before the cluster."""
    out = render(ROOT / "inventories" / "lab", "monitoring_server", TEMPLATES[:2],
                 "monitoring", tmp_path / "out")
    assert sorted(out) == ["lab-mon1"]
    assert _args(out["lab-mon1"]["prometheus-alertmanager"]) == [
        "--web.listen-address=127.0.0.1:9093", "--cluster.listen-address="]
    prom = yaml.safe_load(out["lab-mon1"]["prometheus.yml"])
    assert prom["alerting"]["alertmanagers"] == [
        {"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]


def test_the_production_example_deploys_the_pair_one_per_dc(tmp_path: Path) -> None:
    """soc1 (primary DC) and soc2 (backup DC): each Prometheus alerts both Alertmanagers."""
    out = render(ROOT / "inventories" / "production", "monitoring_server", TEMPLATES[:2],
                 "monitoring", tmp_path / "out")
    assert sorted(out) == ["soc1", "soc2"]
    for me, ip, peer in (("soc1", "10.10.44.21", "10.11.44.21"),
                         ("soc2", "10.11.44.21", "10.10.44.21")):
        args = _args(out[me]["prometheus-alertmanager"])
        assert f"--web.listen-address={ip}:9093" in args
        assert [a for a in args if a.startswith("--cluster.peer=")] == [
            f"--cluster.peer={peer}:9094"]
        prom = yaml.safe_load(out[me]["prometheus.yml"])
        assert prom["alerting"]["alertmanagers"] == [
            {"static_configs": [{"targets": ["10.10.44.21:9093", "10.11.44.21:9093"]}]}]
