"""Network namespaces of a lab: a controller with a bridge, one namespace per host on a veth.

Everything is created inside the lab's own namespaces (`ip -n`): nothing is added to this
machine's own network configuration (no interface, route or NAT rule in the root namespace).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from dcops.errors import LabError
from dcops.lab.hosts import CONTROLLER_ADDRESS, PREFIX_LEN, LabHost

NETNS_DIR = Path("/run/netns")
BRIDGE = "br-lab"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def exists(name: str) -> bool:
    """True when the named network namespace exists."""
    return (NETNS_DIR / name).exists()


def path(name: str) -> str:
    """The bind-mount path of a named namespace (for nsenter --net= and nspawn)."""
    return str(NETNS_DIR / name)


def listed() -> set[str]:
    """Names of every named network namespace on this machine."""
    out = _ip("netns", "list", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def ensure_controller(ctl: str) -> None:
    """Create the controller namespace with its bridge and address (idempotent)."""
    if not exists(ctl):
        _ip("netns", "add", ctl)
    _ip("-n", ctl, "link", "set", "lo", "up")
    if _ip("-n", ctl, "link", "show", BRIDGE, check=False).returncode != 0:
        _ip("-n", ctl, "link", "add", BRIDGE, "type", "bridge")
    addrs = _ip("-n", ctl, "-o", "addr", "show", "dev", BRIDGE).stdout
    if f"{CONTROLLER_ADDRESS}/" not in addrs:
        _ip("-n", ctl, "addr", "add", f"{CONTROLLER_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE)
    _ip("-n", ctl, "link", "set", BRIDGE, "up")


def ensure_host(ctl: str, netns: str, host: LabHost) -> None:
    """Create the host's namespace and join it to the controller's bridge (idempotent)."""
    veth = f"vh{host.octet}"
    if not exists(netns):
        _ip("netns", "add", netns)
    _ip("-n", netns, "link", "set", "lo", "up")
    if _ip("-n", netns, "link", "show", "eth0", check=False).returncode != 0:
        _ip("-n", ctl, "link", "del", veth, check=False)
        _ip("-n", ctl, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
            "netns", netns)
    _ip("-n", ctl, "link", "set", veth, "master", BRIDGE, "up")
    addrs = _ip("-n", netns, "-o", "addr", "show", "dev", "eth0").stdout
    if f"{host.address}/" not in addrs:
        _ip("-n", netns, "addr", "add", f"{host.address}/{PREFIX_LEN}", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")


def release_mountpoint() -> None:
    """Undo the bind mount `ip netns add` makes on /run/netns once no namespace is left in it.

    A plain (not lazy) umount: it fails harmlessly when another lab still holds a namespace.
    """
    if NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        mounts = Path("/proc/self/mounts").read_text().split("\n")
        if any(line.split(" ")[1:2] == [str(NETNS_DIR)] for line in mounts):
            subprocess.run(["umount", str(NETNS_DIR)], capture_output=True, check=False)


def pids(name: str) -> list[int]:
    """Processes whose network namespace is `name`."""
    if not exists(name):
        return []
    out = _ip("netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_all(name: str) -> None:
    """SIGKILL every process left in the namespace."""
    for pid in pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def delete(name: str) -> None:
    """Delete the namespace (its veth ends go with it)."""
    if exists(name):
        _ip("netns", "del", name, check=False)
        if exists(name):
            _ip("netns", "del", name)
