"""`playbooks/site.yml` converges a 5-host systemd lab, and an immediate second run changes nothing.

This is the check an engineer runs before trusting a playbook in production: idempotence of the
whole site (baseline, PKI, backup, SNMP agents, monitoring server) together, not only role by role.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_dcops_wheel import build_wheel

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.M)


def _site(lab_name: str, wheel: Path) -> tuple[int, dict[str, tuple[int, int, int, int]], str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               DCOPS_WHEEL=str(wheel),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        ["ansible-playbook", "-i", "inventories/lab", "-e", f"dcops_lab_name={lab_name}",
         "--vault-password-file", "inventories/lab/.vault-pass-LAB-ONLY", "playbooks/site.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3000, check=False)
    recap = {m[1]: (int(m[2]), int(m[3]), int(m[4]), int(m[5]))
             for m in RECAP.finditer(proc.stdout)}
    return proc.returncode, recap, _why(proc.stdout) + proc.stdout[-5000:] + proc.stderr[-2000:]


def _why(stdout: str) -> str:
    """Every unreachable or failed task of the run with its task name and message (the tail of
    the output alone hides a host that dropped out early)."""
    lines = stdout.splitlines()
    task = ""
    out = []
    for i, line in enumerate(lines):
        if line.startswith("TASK ["):
            task = line.rstrip("* ")
        elif line.startswith(("fatal: [", "failed: [")) or "UNREACHABLE!" in line:
            out.append(f"{task}\n" + "\n".join(lines[i:i + 8]))
    return ("=== why ===\n" + "\n".join(out) + "\n=== tail ===\n") if out else ""


def test_site_converges_then_changes_nothing(lab_factory: Callable[..., Any],
                                             tmp_path: Path) -> None:
    lab = lab_factory(hosts=5, mode="systemd")
    wheel = build_wheel(tmp_path)
    rc, first, out = _site(lab.name, wheel)
    assert rc == 0, out
    assert set(first) == {"lab-app1", "lab-db1", "lab-backup1", "lab-ca1", "lab-mon1"}, out
    assert all(changed > 0 for _, changed, _, _ in first.values()), first
    rc, second, out = _site(lab.name, wheel)
    assert rc == 0, out
    assert {h: r[1] for h, r in second.items()} == dict.fromkeys(first, 0), out
