"""A real 3-node nats-server cluster with JetStream on loopback, for the bus tests.

Each node has its own config, store_dir and ports (client, cluster route, monitoring), chosen
free on 127.0.0.1; nodes are real processes that tests SIGKILL and restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """n distinct ports free right now on loopback (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Node:
    """One nats-server process of the cluster."""

    name: str
    port: int
    cluster_port: int
    http_port: int
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"


@dataclass
class NatsCluster:
    """Start, kill and restart the nodes; `url` lists all three for the client."""

    root: Path
    size: int = 3
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        if shutil.which("nats-server") is None:
            pytest.fail("nats-server is not installed (scripts/apt-packages.txt)")
        ports = free_ports(3 * self.size)
        routes = ", ".join(f"nats-route://{HOST}:{ports[3 * i + 1]}" for i in range(self.size))
        for i in range(self.size):
            name = f"n{i + 1}"
            store = self.root / name / "store"
            store.mkdir(parents=True, exist_ok=True)
            conf = self.root / name / "nats.conf"
            p, c, h = ports[3 * i:3 * i + 3]
            conf.write_text(
                f'server_name: "{name}"\nlisten: "{HOST}:{p}"\nhttp: "{HOST}:{h}"\n'
                f'jetstream {{\n  store_dir: "{store}"\n  max_memory_store: 256MB\n'
                f'  max_file_store: 4GB\n}}\n'
                + (f'cluster {{\n  name: "dcops-test"\n  listen: "{HOST}:{c}"\n'
                   f"  routes: [{routes}]\n}}\n" if self.size > 1 else ""), encoding="utf-8")
            self.nodes.append(Node(name, p, c, h, conf, self.root / name / "nats.log"))

    @property
    def url(self) -> str:
        return "nats://" + ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30) -> None:
        for n in self.nodes:
            self._spawn(n)
        for n in self.nodes:
            self.wait_healthy(n, timeout)

    def _spawn(self, n: Node) -> None:
        with n.log.open("ab") as log:
            # setpriv execs nats-server with SIGKILL as its parent-death signal: no node
            # outlives a killed pytest
            n.proc = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "--", "nats-server", "-c", str(n.conf)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def healthz(self, n: Node) -> tuple[int, str]:
        url = f"http://{HOST}:{n.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def wait_healthy(self, n: Node, timeout: float = 30) -> None:
        """Until the node answers /healthz 200 (JetStream up, its assets current)."""
        deadline = time.monotonic() + timeout
        last: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            if n.proc is not None and n.proc.poll() is not None:
                pytest.fail(f"{n.name} exited {n.proc.returncode}: {n.log.read_text()[-2000:]}")
            last = self.healthz(n)
            if last[0] == 200:
                return
            time.sleep(0.2)
        pytest.fail(f"{n.name} not healthy after {timeout}s: {last}; log tail: "
                    f"{n.log.read_text()[-2000:]}")

    def kill(self, n: Node) -> None:
        """SIGKILL the node (no shutdown, no flush)."""
        assert n.proc is not None
        os.kill(n.proc.pid, signal.SIGKILL)
        n.proc.wait(10)

    def restart(self, n: Node, timeout: float = 60) -> None:
        self._spawn(n)
        self.wait_healthy(n, timeout)

    def jsz(self, n: Node) -> dict[str, object]:
        with urllib.request.urlopen(
                f"http://{HOST}:{n.http_port}/jsz?streams=true&config=true", timeout=5) as r:
            doc: dict[str, object] = json.loads(r.read())
            return doc

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in self.nodes:
            if n.proc is not None:
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(n.proc.pid, signal.SIGKILL)
                    n.proc.wait(5)
