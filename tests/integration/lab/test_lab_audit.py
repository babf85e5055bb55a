"""The audit sidecar: a lab host's own auditd registered with this machine's kernel, safely.

Checked against the kernel itself (an AUDIT_GET / AUDIT_LIST_RULES netlink client below), not
only through the sidecar's own auditctl.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dcops.errors import LabError
from dcops.lab import Lab
from dcops.lab import auditd_sidecar as sidecar

pytestmark = pytest.mark.integration

LabFactory = Callable[..., Lab]
NETLINK_AUDIT = 9
AUDIT_GET, AUDIT_LIST_RULES = 1000, 1013
NLMSG_DONE, NLMSG_ERROR = 3, 2

DANGEROUS = """\
## what augenrules compiles on a hardened host: control lines the sidecar must never load
-D
-b 8192
-f 2
--backlog_wait_time 60000
--loginuid-immutable
-w /etc/sudoers.d -p wa -k sudoers
-w /etc/passwd -p wa -k identity
-a always,exit -F arch=b64 -S execve -F auid>=1000 -F auid!=unset -k exec
-e 2
"""


def _netlink(msg_type: int) -> list[tuple[int, bytes]]:
    """One audit netlink request from this process (initial namespaces): replies (type, body)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT) as sock:
        sock.settimeout(5)
        sock.send(struct.pack("=IHHII", 16, msg_type, 0x1, 1, 0))  # NLM_F_REQUEST
        replies: list[tuple[int, bytes]] = []
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                body = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", body)[0]
                    if code != 0:
                        raise OSError(-code, f"audit netlink request {msg_type}")
                    continue
                if kind == NLMSG_DONE:
                    return replies
                replies.append((kind, body))
                if msg_type == AUDIT_GET and kind == AUDIT_GET:
                    return replies


def kernel_full() -> tuple[int, int, int, int]:
    """(enabled, failure, pid of the registered audit daemon, backlog_limit) from the kernel."""
    (_kind, body), = [r for r in _netlink(AUDIT_GET) if r[0] == AUDIT_GET]
    _mask, enabled, failure, pid, _rate, backlog_limit = struct.unpack_from("=IIIIII", body)
    return enabled, failure, pid, backlog_limit


def kernel() -> tuple[int, int, int]:
    """(enabled, failure, pid of the registered audit daemon) straight from the kernel."""
    return kernel_full()[:3]


def kernel_rule_count() -> int:
    return sum(1 for kind, _ in _netlink(AUDIT_LIST_RULES) if kind == AUDIT_LIST_RULES)


def wait_for(path: Path, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text:
            return text
        time.sleep(0.2)
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def lab(audit_sidecar_turn: None, module_lab_factory: LabFactory) -> Lab:
    """Two chroot hosts; lab-app1 gets auditd, with records named after the host (as baseline)."""
    if sidecar.current() is not None or kernel()[2] != 0:
        pytest.skip("an audit daemon is already registered on this machine")
    lab = module_lab_factory(hosts=2, mode="chroot")
    lab.run("lab-app1", "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -qq auditd >/dev/null && sudo sed -i "
            "'s/^name_format.*/name_format = HOSTNAME/' /etc/audit/auditd.conf", timeout=600)
    return lab


def test_sidecar_loads_rules_only_never_immutable(lab: Lab, tmp_path: Path) -> None:
    before, backlog_before = kernel(), kernel_full()[3]
    rules = tmp_path / "audit.rules"
    rules.write_text(DANGEROUS)
    record = lab.audit_up("lab-app1", rules)
    try:
        assert kernel_full()[3] == max(backlog_before, sidecar.BACKLOG_LIMIT)
        assert [d.split(": ", 1)[1] for d in record.dropped] == [
            "-D", "-b 8192", "-f 2", "--backlog_wait_time 60000", "--loginuid-immutable",
            "-e 2"]
        assert f"{rules}:10: -e 2" in record.dropped
        enabled, failure, pid = kernel()
        assert (enabled, pid) == (1, record.pid)  # enabled by auditd, never 2 (immutable)
        assert failure == before[1]  # -f 2 (panic) not applied
        assert kernel_rule_count() == 3
        listed = sidecar.loaded_rules(record.leader, record.merged)
        assert "-w /etc/sudoers.d -p wa -k sudoers" in listed
        assert lab.audit_status() == sidecar.current()
    finally:
        assert lab.audit_down() is not None
    assert kernel() == before
    assert kernel_full()[3] == backlog_before
    assert kernel_rule_count() == 0
    assert sidecar.current() is None


def test_watches_fire_for_their_host_only_with_its_node_name(lab: Lab, tmp_path: Path) -> None:
    rules = tmp_path / "audit.rules"
    rules.write_text("-w /etc/sudoers.d -p wa -k sudoers\n-w /etc/passwd -p wa -k identity\n")
    record = lab.audit_up("lab-app1", rules)
    try:
        lab.run("lab-db1", "sudo touch /etc/sudoers.d/from-db1-host")
        lab.run("lab-app1", "sudo touch /etc/sudoers.d/from-app1-host")
        log = wait_for(record.log_path, "from-app1-host")
        ours = [ln for ln in log.splitlines() if "from-app1-host" in ln]
        assert ours, log[-2000:]
        assert all(ln.startswith("node=lab-app1 type=PATH") for ln in ours), ours
        serial = ours[0].split("msg=audit(", 1)[1].split(")", 1)[0]
        syscall = [ln for ln in log.splitlines() if f"audit({serial})" in ln and "SYSCALL" in ln]
        assert syscall and 'key="sudoers"' in syscall[0] and "auid=1000" in syscall[0]
        assert "from-db1-host" not in log  # another host's /etc/sudoers.d is another inode
        # inside the host (its own pid namespace) the kernel still refuses audit control
        inside = lab.run("lab-app1", "sudo auditctl -s", check=False)
        assert inside.returncode != 0 and "Operation not permitted" in inside.stderr
    finally:
        lab.audit_down()
    assert kernel_rule_count() == 0


def test_one_sidecar_per_machine(lab: Lab, tmp_path: Path) -> None:
    rules = tmp_path / "audit.rules"
    rules.write_text("-w /etc/passwd -p wa -k identity\n")
    lab.audit_up("lab-app1", rules)
    try:
        with pytest.raises(LabError, match="already runs for lab-app1"):
            lab.audit_up("lab-app1", rules)
        with pytest.raises(LabError, match="has no /sbin/auditd"):
            Lab(lab.name).audit_up("lab-db1", rules)
        assert kernel_rule_count() == 1
    finally:
        lab.audit_down()


def test_a_refused_rule_undoes_everything(lab: Lab, tmp_path: Path) -> None:
    before = kernel()
    rules = tmp_path / "bad.rules"
    rules.write_text("-w /etc/passwd -p wa -k identity\n-a always,exit -F nosuchfield=1\n")
    with pytest.raises(LabError, match=rf"{rules}:2: auditctl refused"):
        lab.audit_up("lab-app1", rules)
    assert sidecar.current() is None
    assert kernel() == before and kernel_rule_count() == 0


def test_cli_and_lab_down_clean_up(lab_factory: LabFactory, tmp_path: Path) -> None:
    other = lab_factory(hosts=1, mode="chroot")
    other.run("lab-app1", "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
              "apt-get install -y -qq auditd >/dev/null", timeout=600)
    dcops = str(Path(sys.executable).with_name("dcops"))
    env = dict(os.environ, COLUMNS="300")  # rich wraps at 80 columns otherwise
    rules = tmp_path / "audit.rules"
    rules.write_text("-w /etc/passwd -p wa -k identity\n-e 2\n")
    up = subprocess.run([dcops, "lab", "audit", "up", "lab-app1", "--name", other.name,
                         "--rules", str(rules)], capture_output=True, text=True, timeout=120,
                        check=False, env=env)
    assert up.returncode == 0, up.stderr
    assert "1 rules loaded" in up.stdout and "-e 2" in up.stderr
    status = subprocess.run([dcops, "lab", "audit", "status", "--name", other.name, "--json"],
                            capture_output=True, text=True, timeout=60, check=False, env=env)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["running"] and doc["kernel"]["pid"] == str(doc["pid"])
    assert doc["kernel"]["enabled"] == "1"
    assert doc["kernel_rules"] == ["-w /etc/passwd -p wa -k identity"]
    assert doc["dropped"] == [f"{rules}:2: -e 2"]
    assert kernel()[2] != 0
    other.down()  # `lab down` stops the sidecar first, while the host can run auditctl
    assert kernel()[2] == 0 and kernel_rule_count() == 0
    assert sidecar.current() is None
    gone = subprocess.run([dcops, "lab", "audit", "status", "--name", other.name],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert gone.returncode == 1 and "no audit sidecar" in gone.stdout
