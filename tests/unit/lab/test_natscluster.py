"""dcops.lab.natscluster: the demo's 3-node cluster configs, checked by nats-server itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dcops.lab.natscluster import bus_url, write_cluster


def test_three_nodes_with_their_own_ports_and_stores_and_valid_configs(tmp_path: Path) -> None:
    nodes = write_cluster(tmp_path)
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    assert len({n.client_port for n in nodes} | {n.http_port for n in nodes}) == 6
    for n in nodes:
        text = n.conf.read_text()
        assert f'store_dir: "{tmp_path / n.name / "store"}"' in text
        assert (tmp_path / n.name / "store").is_dir()
        assert text.count("nats-route://") == 3
    assert bus_url(nodes) == ("nats://127.0.0.1:14222,127.0.0.1:14223,127.0.0.1:14224"
                              "?replicas=3")
    exe = shutil.which("nats-server")
    if exe is None:
        pytest.fail("nats-server is not installed (scripts/apt-packages.txt)")
    for n in nodes:
        proc = subprocess.run([exe, "-t", "-c", str(n.conf)], capture_output=True, text=True,
                              check=False, timeout=30)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_one_node_has_no_cluster_and_one_replica(tmp_path: Path) -> None:
    (node,) = write_cluster(tmp_path, size=1)
    assert "cluster {" not in node.conf.read_text()
    assert bus_url([node]).endswith("?replicas=1")
    with pytest.raises(ValueError, match="at least one node"):
        write_cluster(tmp_path, size=0)
