"""Helpers for compliance integration tests: assessment of lab hosts in-process."""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dcops.compliance import Assessor, Evidence, Finding, Profile, load_catalogue
from dcops.compliance.collect.backup import BackupCollector, Repository
from dcops.compliance.collect.site import SiteCollector
from dcops.compliance.collect.ssh import SshCollector, targets_from_ssh_config
from dcops.inventory import load_inventory
from dcops.lab import Lab

ROOT = Path(__file__).resolve().parents[3]
INVENTORY = ROOT / "inventories" / "lab"
SYSTEM = "lgsp"  # lab-app1 and lab-db1


@dataclass
class Audit:
    """The last assessment: findings by control, the evidence, and how long collection took."""

    findings: dict[str, Finding]
    evidence: Evidence
    seconds: float


def run_on(lab: Lab, host: str, command: str) -> str:
    """Run a shell command as root on a lab host (ssh through the lab's own config)."""
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config_path), host,
                           f"sudo -n sh -c {shlex.quote(command)}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{host}: {command}: {proc.stderr}"
    return proc.stdout


def assess(lab: Lab, repositories: list[Repository] | None = None,
           drill_dir: Path | None = None) -> Audit:
    """Collect evidence from the lab (SSH in parallel, site model, backups) and assess lgsp."""
    model = load_inventory(INVENTORY)
    evidence = Evidence()
    started = time.monotonic()
    SiteCollector(str(INVENTORY)).collect(model, evidence)
    SshCollector(targets_from_ssh_config(model, lab.ssh_config_path)).collect(model, evidence)
    if repositories is not None:
        BackupCollector(repositories, drill_dir).collect(model, evidence)
    seconds = time.monotonic() - started
    report = Assessor(model, load_catalogue(), evidence, Profile(), "tt12",
                      datetime.now(UTC).replace(microsecond=0)).assess(SYSTEM)
    return Audit({f.control: f for f in report.findings}, evidence, seconds)


_BASELINED: set[str] = set()  # labs the baseline playbook has been applied to


def run_playbooks(lab: Lab, *books: str) -> None:
    """Run playbooks (names under playbooks/) on every host of the lab, with the lab's Vault key."""
    import os

    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), "-i",
         str(lab.inventory_path), "--limit", ",".join(h.name for h in lab.hosts),
         "--vault-password-file", str(INVENTORY / ".vault-pass-LAB-ONLY"),
         *(str(ROOT / "playbooks" / b) for b in books)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "default"})
    assert proc.returncode == 0, proc.stdout[-3000:]


def apply_baseline(lab: Lab) -> None:
    """Run playbooks/baseline.yml on every host of the lab (once per lab; it is idempotent)."""
    run_playbooks(lab, "baseline.yml")
    _BASELINED.add(lab.name)


def ensure_baseline(lab: Lab) -> None:
    """The baseline applied, whichever test of the module runs first (or alone)."""
    if lab.name not in _BASELINED:
        apply_baseline(lab)


def verdicts(audit: Audit) -> dict[str, str]:
    """Control -> verdict value."""
    return {c: f.verdict.value for c, f in audit.findings.items()}


def changed(before: Audit, after: Audit) -> dict[str, tuple[str, str]]:
    """Controls whose verdict changed, with (before, after)."""
    a, b = verdicts(before), verdicts(after)
    return {c: (a[c], b[c]) for c in a if a[c] != b[c]}
