"""Ask, from inside the controller namespace, which lab addresses answer with an SSH banner."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from dcops.lab import netns

_PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def banner(addr):
    try:
        with socket.create_connection((addr, 22), timeout=2) as s:
            s.settimeout(2)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False
addrs = sys.argv[1:]
with ThreadPoolExecutor(max(1, len(addrs))) as pool:
    print(json.dumps(dict(zip(addrs, pool.map(banner, addrs)))))
"""


def sshd_answers(ctl_netns: str, addresses: list[str]) -> dict[str, bool]:
    """For each address: does sshd answer on port 22 (banner read from the controller)?"""
    if not addresses or not netns.exists(ctl_netns):
        return dict.fromkeys(addresses, False)
    proc = subprocess.run(["nsenter", f"--net={netns.path(ctl_netns)}", sys.executable, "-c",
                           _PROBE, *addresses], capture_output=True, text=True, check=False,
                          timeout=30)
    if proc.returncode != 0:
        return dict.fromkeys(addresses, False)
    result: dict[str, bool] = json.loads(proc.stdout)
    return result


def wait_sshd(ctl_netns: str, addresses: list[str], timeout: float) -> list[str]:
    """Wait until every address answers; returns those still silent at the deadline."""
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending:
        answers = sshd_answers(ctl_netns, pending)
        pending = [a for a in pending if not answers.get(a)]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return pending
