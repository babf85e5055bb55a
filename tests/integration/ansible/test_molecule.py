"""Each role's molecule scenario (converge, idempotence, verify) in its own systemd lab."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_dcops_wheel import build_wheel

ROOT = Path(__file__).resolve().parents[3]
ROLES = ROOT / "playbooks" / "roles"
BIN = Path(sys.executable).parent
SCENARIOS = sorted(p.parents[2].name for p in ROLES.glob("*/molecule/default/molecule.yml"))
TIMEOUT_S = 1800  # 3-15 min each in CI beside the other workers; 900 s ran out at load 15

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("molecule scenarios start lab hosts: root needed")
    for tool in ("ip", "nc", "ssh", "systemd-nspawn", "snmpget", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (scripts/apt-packages.txt)")
    if not (ROOT / "collections" / "ansible_collections" / "community" / "crypto").is_dir():
        pytest.skip("collections/ missing: run `bash scripts/setup.sh`")


def _lab_name(role: str) -> str:
    text = (ROLES / role / "molecule" / "default" / "molecule.yml").read_text(encoding="utf-8")
    match = re.search(r"dcops_lab_name=([a-z0-9-]+)", text)
    assert match, f"{role}: molecule.yml names no dcops_lab_name"
    return match.group(1)


def test_every_role_has_a_scenario() -> None:
    roles = sorted(p.name for p in ROLES.iterdir() if (p / "tasks" / "main.yml").is_file())
    assert roles == SCENARIOS


@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule_scenario(role: str, tmp_path: Path) -> None:
    _require()
    env = dict(os.environ)
    if role == "monitoring_server":
        env["DCOPS_WHEEL"] = str(build_wheel(tmp_path))
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env["DCOPS_CLI"] = str(BIN / "dcops")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["NO_COLOR"] = "1"
    try:
        proc = subprocess.run(
            [str(BIN / "molecule"), "test"], cwd=ROLES / role, env=env, capture_output=True,
            text=True, timeout=TIMEOUT_S, check=False)
    finally:
        subprocess.run([str(BIN / "dcops"), "lab", "down", "--name", _lab_name(role)], env=env,
                       capture_output=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"molecule test failed for {role}:\n{out[-8000:]}"
    assert "idempotence: Executed: Successful" in out
    assert "verify: Executed: Successful" in out
