"""A 3-node nats-server JetStream cluster on one namespace's loopback (what `dcops demo --bus
nats` runs in the lab controller): configs and store directories under a folder of the caller.

The nodes listen on 127.0.0.1 of the namespace they run in, without TLS or users: nothing
outside that namespace reaches them. Production clusters come from the event_bus role (TLS from
pki_cert, per-role users); this is the lab's stand-in for the demo only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# Client, cluster (route) and monitoring ports of node i are BASE + i (i = 0, 1, 2).
CLIENT_BASE, CLUSTER_BASE, HTTP_BASE = 14222, 16222, 18222


@dataclass(frozen=True)
class NatsNode:
    """One node: its config file and the ports it listens on."""

    name: str
    conf: Path
    client_port: int
    http_port: int

    @property
    def health_url(self) -> str:
        """/healthz answers 200 once JetStream is up and the node's assets are current."""
        return f"http://{HOST}:{self.http_port}/healthz"


def write_cluster(root: Path, size: int = 3, cluster_name: str = "dcops-demo"
                  ) -> list[NatsNode]:
    """Write one nats.conf and store directory per node under `root`/nN."""
    if size < 1:
        raise ValueError(f"size {size}: expected at least one node")
    routes = ", ".join(f"nats-route://{HOST}:{CLUSTER_BASE + i}" for i in range(size))
    nodes = []
    for i in range(size):
        name = f"n{i + 1}"
        store = root / name / "store"
        store.mkdir(parents=True, exist_ok=True)
        conf = root / name / "nats.conf"
        cluster = (f'cluster {{\n  name: "{cluster_name}"\n  listen: "{HOST}:{CLUSTER_BASE + i}"\n'
                   f"  routes: [{routes}]\n}}\n") if size > 1 else ""
        conf.write_text(
            f'server_name: "{name}"\nlisten: "{HOST}:{CLIENT_BASE + i}"\n'
            f'http: "{HOST}:{HTTP_BASE + i}"\n'
            f'jetstream {{\n  store_dir: "{store}"\n  max_memory_store: 256MB\n'
            f"  max_file_store: 2GB\n}}\n" + cluster, encoding="utf-8")
        nodes.append(NatsNode(name, conf, CLIENT_BASE + i, HTTP_BASE + i))
    return nodes


def bus_url(nodes: list[NatsNode]) -> str:
    """The `--bus` URL naming every node; replicas=3 when there are three or more."""
    hosts = ",".join(f"{HOST}:{n.client_port}" for n in nodes)
    return f"nats://{hosts}?replicas={3 if len(nodes) >= 3 else 1}"
