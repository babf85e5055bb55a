"""Evidence is refused from a lab host whose SSH host key changed, until the new key is trusted.

A chroot-mode lab host (sshd is its PID 1): the lab recorded its key in the lab's known_hosts when
it started, so evidence is collected. Then the host's key is regenerated in its root and sshd
reloads it (SIGHUP re-executes sshd): `dcops audit run` refuses with the host and both fingerprints
(the recorded one and the one presented), writes no report, and `dcops hosts trust` with the
fingerprint read on the host itself records the new key, after which evidence flows again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from compliance_lab import INVENTORY

from dcops.compliance.collect import hostkeys
from dcops.compliance.collect.ssh import SshCollector, targets_from_ssh_config
from dcops.compliance.evidence import Evidence
from dcops.errors import HostKeyError
from dcops.inventory import load_inventory
from dcops.lab import Lab
from dcops.lab.paths import state_root

pytestmark = pytest.mark.integration

DCOPS = str(Path(sys.executable).with_name("dcops"))
HOST = "lab-app1"


def _fingerprint_of(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


def _presented(lab: Lab) -> str:
    from paramiko import ProxyCommand

    address = lab.host(HOST).address
    sock = ProxyCommand(f"ip netns exec {lab.ctl_netns} nc {address} 22")
    return hostkeys.fingerprint(hostkeys.presented_key(address, 22, sock))


def _collect(lab: Lab) -> Evidence:
    model = load_inventory(INVENTORY)
    targets = [t for t in targets_from_ssh_config(model, lab.ssh_config_path) if t.name == HOST]
    assert len(targets) == 1 and targets[0].known_hosts == str(lab.known_hosts_path)
    evidence = Evidence()
    SshCollector(targets, timeout=30).collect(model, evidence)
    return evidence


def test_changed_host_key_refuses_evidence_until_trusted(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory(hosts=1, mode="chroot")
    assert lab.known_hosts_path.read_text().startswith(f"{HOST},10.77.0.11 ssh-ed25519 ")
    first = _collect(lab)  # the key recorded at `lab up` is the one sshd presents
    assert len(first.records) > 5 and not [n for n in first.notes if "SSH failed" in n]

    state = lab.state()
    assert state is not None
    root = Path(state.hosts[HOST].merged)
    old = _fingerprint_of(root / "etc/ssh/ssh_host_ed25519_key.pub")
    for key in root.glob("etc/ssh/ssh_host_*"):
        key.unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rebuilt",
                    "-f", str(root / "etc/ssh/ssh_host_ed25519_key")], check=True)
    new = _fingerprint_of(root / "etc/ssh/ssh_host_ed25519_key.pub")
    assert new != old
    os.kill(lab.host_pid(HOST), signal.SIGHUP)  # sshd re-executes itself with the new key
    deadline = time.monotonic() + 30
    while True:
        try:
            if _presented(lab) == new:
                break
        except HostKeyError:
            pass  # sshd is restarting
        assert time.monotonic() < deadline, "sshd did not present the regenerated key"
        time.sleep(0.2)

    with pytest.raises(HostKeyError) as caught:
        _collect(lab)
    text = str(caught.value)
    assert text.startswith(f"{HOST} (10.77.0.11:22): SSH host key CHANGED")
    assert f"expected ssh-ed25519 {old} ({lab.known_hosts_path})" in text
    assert f"presented ssh-ed25519 {new}" in text

    env = {**os.environ, "DCOPS_STATE_DIR": str(state_root().parent), "COLUMNS": "300"}
    out = tmp_path / "audit"
    audit = subprocess.run([DCOPS, "audit", "run", "-i", str(INVENTORY), "--lab", lab.name,
                            "--system", "lgsp", "--no-iac", "--no-pdf", "--out", str(out)],
                           capture_output=True, text=True, timeout=600, check=False, env=env)
    said = " ".join(audit.stderr.split())
    assert audit.returncode == 1, audit.stdout[-2000:] + audit.stderr[-2000:]
    assert f"error: {HOST} (10.77.0.11:22): SSH host key CHANGED" in said
    assert old in said and new in said
    assert not (out / "findings.json").exists()  # no report from refused evidence

    trust = subprocess.run([DCOPS, "hosts", "trust", HOST, "-i", str(lab.inventory_path),
                            "--expect", new, "--yes"],
                           capture_output=True, text=True, timeout=300, check=False, env=env)
    assert trust.returncode == 0, trust.stdout + trust.stderr
    assert f"CHANGED / đã thay đổi: {lab.known_hosts_path}" in trust.stdout
    assert f"recorded / đã ghi nhận ssh-ed25519 {new}" in trust.stdout
    again = _collect(lab)
    assert len(again.records) > 5 and not [n for n in again.notes if "SSH failed" in n]
