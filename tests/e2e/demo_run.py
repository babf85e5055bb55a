"""What the two demo tests share: running `dcops demo` in a lab of its own, reading its queue,
and checking that nothing was left behind (tests/e2e/test_demo_full.py, test_demo_bus_nats.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DCOPS = str(Path(sys.executable).with_name("dcops"))
# What the demo's own playbook runs cause (accounts they create and first log in with).
OWN_CHANGES = ("New Local User Account Created", "SSH Login By A Newly Created Account")
BRUTE_FORCE, ATTACKER = "SSH Brute Force From One Source", "10.78.1.50"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_root() -> None:
    """The demo's lab needs network namespaces: without root the test fails (never skips)."""
    if os.geteuid() != 0:
        pytest.fail("the demo's lab needs root (network namespaces)")


def run_demo(state: Path, lab: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`dcops demo` with its own state folder, lab name and console port (demos run in parallel)."""
    return subprocess.run(
        [DCOPS, "demo", *extra, "--state", str(state), "--lab-name", lab,
         "--console-port", str(free_port())],
        cwd=REPO, capture_output=True, text=True, timeout=2400, check=False,
        env=dict(os.environ, COLUMNS="200"))


def outcome(proc: subprocess.CompletedProcess[str]) -> str:
    """What a failed demo says: the end of its stdout (the step table with the failed step and
    its error) and its stderr without the example-inventory banner, which every command repeats
    and which filled the whole of the old 6,000-character tail."""
    err = [line for line in proc.stderr.splitlines()
           if not line.startswith(("!!", "warning:")) and line.strip()]
    return f"{proc.stdout[-5000:]}\n--- stderr (banner lines left out) ---\n" + \
        "\n".join(err)[-3000:]


def dcops_json(state: Path, *args: str) -> Any:
    """A `dcops ... --json` command on the demo's state."""
    out = subprocess.run([DCOPS, *args, "--json"], capture_output=True, text=True, check=True,
                         cwd=REPO, env=dict(os.environ, DCOPS_STATE_DIR=str(state / "state")))
    return json.loads(out.stdout)


def queue_alerts(state: Path) -> list[dict[str, Any]]:
    """Every alert of the demo's queue."""
    data = dcops_json(state, "alerts", "list", "--limit", "1000")
    return list(data["alerts"] if isinstance(data, dict) else data)


def netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def assert_nothing_left(lab: str, state: Path) -> None:
    """No namespace of the lab and no process started under the demo's state folder."""
    assert not [n for n in netns() if n.startswith(f"{lab}-")], netns()
    leftovers = subprocess.run(["pgrep", "-af", str(state)], capture_output=True, text=True,
                               check=False).stdout
    assert leftovers.strip() == "", leftovers
