"""Helpers shared by the SNMP integration tests (a unique module name: tests have no packages)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from dcops.lab.snmp import DEFAULT_USERS
from dcops.model.site import Device, Secret, SnmpCredentials

COMMUNITY = "lab-public"


def need(*tools: str) -> None:
    """Skip when a Debian tool is missing (CI installs them from scripts/apt-packages.txt)."""
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} not installed")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def v2c_device(name: str, port: int, site: str = "primary-dc", **kw: object) -> Device:
    cred = SnmpCredentials("2c", port, community=Secret(COMMUNITY))
    return Device(name, "127.0.0.1", site, "core_switch", "net_snmp", cred, **kw)  # type: ignore[arg-type]


def v3_device(name: str, port: int, user_index: int = 0, site: str = "backup-dc") -> Device:
    u = DEFAULT_USERS[user_index]
    cred = SnmpCredentials("3", port, u.name, u.auth_protocol.replace("-", ""),
                           Secret(u.auth_password), u.priv_protocol, Secret(u.priv_password))
    return Device(name, "127.0.0.1", site, "firewall", "fortigate", cred)
