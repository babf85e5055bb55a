"""A real 3-node nats-server cluster with JetStream, for the bus tests and the bench.

Two placements:
- `netns=True` (the tests, as root): like lab hosts, every node runs in a network namespace of its
  own (10.250.0.11-13, ports 4222/6222/8222), joined by a bridge in a controller namespace
  (10.250.0.1); nothing is added to this machine's own network. The test talks to the cluster from
  threads moved into the controller namespace (`run`): a bus created there keeps its event loop
  thread, and so its sockets, in that namespace.
- `netns=False` (the bench, no root needed): loopback, free ports chosen for each node.

Each node has its own config and store_dir; nodes are real processes that tests SIGKILL and
restart, run under `setpriv --pdeathsig KILL` so none outlives a killed pytest.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

HOST = "127.0.0.1"
SUBNET = "10.250.0"  # inside the cluster's own namespaces only
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


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


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _enter_netns(name: str) -> None:
    """Move the calling thread into a named network namespace (Python 3.11 has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call `fn` in a thread moved into network namespace `name`; its result or its exception."""
    box: list[T] = []
    err: list[BaseException] = []

    def main() -> None:
        try:
            _enter_netns(name)
            box.append(fn())
        except BaseException as exc:  # handed to the caller
            err.append(exc)

    t = threading.Thread(target=main, name=f"netns-{name}")
    t.start()
    t.join()
    if err:
        raise err[0]
    return box[0]


@dataclass
class Node:
    """One nats-server process of the cluster."""

    name: str
    host: str
    port: int
    cluster_port: int
    http_port: int
    conf: Path
    log: Path
    netns: str = ""
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class NatsCluster:
    """Start, kill and restart the nodes; `url` lists all of them for the client."""

    root: Path
    size: int = 3
    netns: bool = False
    nodes: list[Node] = field(default_factory=list)
    tag: str = field(default_factory=lambda: f"nb{secrets.token_hex(3)}")

    def __post_init__(self) -> None:
        if shutil.which("nats-server") is None:
            pytest.fail("nats-server is not installed (scripts/apt-packages.txt)")
        if self.netns:
            if os.geteuid() != 0 or shutil.which("ip") is None:
                pytest.fail("the cluster's network namespaces need root and iproute2")
            hosts = [f"{SUBNET}.{11 + i}" for i in range(self.size)]
            ports = [4222, 6222, 8222] * self.size
        else:
            hosts = [HOST] * self.size
            ports = free_ports(3 * self.size)
        routes = ", ".join(f"nats-route://{hosts[i]}:{ports[3 * i + 1]}"
                           for i in range(self.size))
        for i in range(self.size):
            name = f"n{i + 1}"
            store = self.root / name / "store"
            store.mkdir(parents=True, exist_ok=True)
            conf = self.root / name / "nats.conf"
            h = hosts[i]
            p, c, m = ports[3 * i:3 * i + 3]
            conf.write_text(
                f'server_name: "{name}"\nlisten: "{h}:{p}"\nhttp: "{h}:{m}"\n'
                f'jetstream {{\n  store_dir: "{store}"\n  max_memory_store: 256MB\n'
                f'  max_file_store: 4GB\n}}\n'
                + (f'cluster {{\n  name: "dcops-test"\n  listen: "{h}:{c}"\n'
                   f"  routes: [{routes}]\n}}\n" if self.size > 1 else ""), encoding="utf-8")
            self.nodes.append(Node(name, h, p, c, m, conf, self.root / name / "nats.log",
                                   f"{self.tag}{name}" if self.netns else ""))

    @property
    def controller(self) -> str:
        return f"{self.tag}c"

    @property
    def url(self) -> str:
        return "nats://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def _network(self) -> None:
        """Controller namespace with a bridge; one namespace per node on a veth to it."""
        ctl = self.controller
        _ip("netns", "add", ctl)
        _ip("-n", ctl, "link", "set", "lo", "up")
        _ip("-n", ctl, "link", "add", "br-bus", "type", "bridge")
        _ip("-n", ctl, "addr", "add", f"{SUBNET}.1/24", "dev", "br-bus")
        _ip("-n", ctl, "link", "set", "br-bus", "up")
        for i, n in enumerate(self.nodes):
            _ip("netns", "add", n.netns)
            _ip("-n", n.netns, "link", "set", "lo", "up")
            _ip("-n", ctl, "link", "add", f"vb{i}", "type", "veth", "peer", "name", "eth0",
                "netns", n.netns)
            _ip("-n", ctl, "link", "set", f"vb{i}", "master", "br-bus", "up")
            _ip("-n", n.netns, "addr", "add", f"{n.host}/24", "dev", "eth0")
            _ip("-n", n.netns, "link", "set", "eth0", "up")

    def run(self, fn: Callable[[], T]) -> T:
        """Call `fn` where the cluster is reachable (a thread in the controller namespace)."""
        return in_netns(self.controller, fn) if self.netns else fn()

    def start(self, timeout: float = 30) -> None:
        if self.netns:
            self._network()
        for n in self.nodes:
            self._spawn(n)
        for n in self.nodes:
            self.wait_healthy(n, timeout)

    def _spawn(self, n: Node) -> None:
        cmd = ["setpriv", "--pdeathsig", "KILL", "--", "nats-server", "-c", str(n.conf)]
        if n.netns:  # ip netns exec execs the command: the pid stays nats-server's
            cmd = ["ip", "netns", "exec", n.netns, *cmd]
        with n.log.open("ab") as log:
            n.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def _http(self, n: Node, path: str) -> tuple[int, str]:
        def get() -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://{n.host}:{n.http_port}{path}",
                                            timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
            except OSError as exc:
                return 0, str(exc)

        return self.run(get)

    def healthz(self, n: Node) -> tuple[int, str]:
        return self._http(n, "/healthz")

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
        status, body = self._http(n, "/jsz?streams=true&config=true")
        assert status == 200, (status, body)
        doc: dict[str, object] = json.loads(body)
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
        if self.netns:
            for ns in [n.netns for n in self.nodes] + [self.controller]:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
