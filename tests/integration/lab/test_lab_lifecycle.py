"""`dcops lab up --hosts 3 && dcops lab down` leaves namespaces and mounts as they were."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration



def new_lab_name(prefix: str) -> str:
    """A short unique lab name."""
    return f"{prefix}{secrets.token_hex(3)}"


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _mounts() -> list[str]:
    return Path("/proc/mounts").read_text().splitlines()


def _dcops(*args: str) -> subprocess.CompletedProcess[str]:
    dcops = str(Path(sys.executable).with_name("dcops"))
    return subprocess.run([dcops, *args], capture_output=True, text=True, check=False,
                          timeout=600)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def test_cli_up_status_down_leaves_nothing_behind() -> None:
    name = new_lab_name("c")
    netns_before, mounts_before = _netns(), _mounts()
    try:
        up = _dcops("lab", "up", "--name", name, "--hosts", "3")
        assert up.returncode == 0, up.stderr
        status = _dcops("lab", "status", "--name", name, "--json")
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["hosts"]
        assert [(r["host"], r["up"], r["sshd"]) for r in rows] == [
            ("lab-app1", True, True), ("lab-db1", True, True), ("lab-backup1", True, True)]
        assert {f"{name}-ctl", f"{name}-lab-app1"} <= _netns()
    finally:
        down = _dcops("lab", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert not {n for n in _netns() if n.startswith(f"{name}-")}
    assert not [m for m in _mounts() if f"/lab/{name}/" in m]
    assert not _processes_mentioning(f"/lab/{name}/")
    assert not _processes_mentioning(f"{name}-ctl")
    # nobody else's lab ran meanwhile (the CI case): everything is exactly as before
    if _netns() == netns_before:
        assert sorted(_mounts()) == sorted(mounts_before)


def test_down_of_a_lab_that_is_not_up_is_harmless() -> None:
    result = _dcops("lab", "down", "--name", new_lab_name("d"))
    assert result.returncode == 0, result.stderr


def test_bad_mode_is_a_clear_error() -> None:
    result = _dcops("lab", "up", "--name", new_lab_name("e"), "--mode", "docker")
    assert result.returncode == 1
    assert "expected one of chroot, systemd" in result.stderr
