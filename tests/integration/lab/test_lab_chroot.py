"""Three chroot-mode lab hosts: SSH on each (ssh, Paramiko, Fabric), idempotent up, apt repo."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dcops.lab import Lab

pytestmark = pytest.mark.integration

LabFactory = Callable[..., Lab]


@pytest.fixture(scope="module")
def lab(module_lab_factory: LabFactory) -> Lab:
    """One 3-host chroot lab shared by this module's tests."""
    return module_lab_factory(hosts=3, mode="chroot")


def test_three_hosts_answer_over_ssh(lab: Lab) -> None:
    names = [h.name for h in lab.hosts]
    assert names == ["lab-app1", "lab-db1", "lab-backup1"]
    for host in lab.hosts:
        out = lab.run(host.name, "hostname; id -un; sudo -n id -u; ip -4 -o addr show dev eth0")
        lines = out.stdout.splitlines()
        assert lines[:3] == [host.name, "ansible", "0"]
        assert f"inet {host.address}/24" in lines[3]


def test_paramiko_reaches_each_host_with_checked_host_key(lab: Lab) -> None:
    for host in lab.hosts:
        client = lab.paramiko_client(host.name)
        try:
            _stdin, stdout, _stderr = client.exec_command("cat /etc/hostname")
            assert stdout.read().decode().strip() == host.name
            assert stdout.channel.recv_exit_status() == 0
        finally:
            client.close()


def test_fabric_threading_group_runs_in_parallel(lab: Lab) -> None:
    group = lab.fabric_group()
    try:
        results = group.run("hostname", hide=True, in_stream=False)
    finally:
        group.close()
    assert sorted(r.stdout.strip() for r in results.values()) == sorted(
        h.name for h in lab.hosts)
    assert all(r.ok for r in results.values())


def test_up_is_idempotent(lab: Lab) -> None:
    state = lab.state()
    assert state is not None
    before = {n: r.leader for n, r in state.hosts.items()}
    lab.up(hosts=3, mode="chroot")
    again = lab.state()
    assert again is not None
    assert {n: r.leader for n, r in again.hosts.items()} == before
    assert all(s.up and s.sshd for s in lab.status())


def test_hosts_install_from_the_lab_repository_only(lab: Lab) -> None:
    sources = lab.run("lab-app1", "cat /etc/apt/sources.list").stdout
    assert f"deb [trusted=yes] {lab.repo_url} ./" in sources
    assert "deb.debian.org" not in sources
    lab.run("lab-app1", "sudo apt-get -q update", timeout=120)
    lab.run("lab-app1", "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q lsof",
            timeout=300)
    assert lab.run("lab-app1", "command -v lsof").stdout.strip() == "/usr/bin/lsof"
    # the hosts have no route beyond the lab bridge
    assert "default" not in lab.run("lab-app1", "ip route").stdout


def test_controller_process_receives_syslog_from_a_host(lab: Lab) -> None:
    listener = lab.ctl_popen(
        [sys.executable, "-c",
         "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
         "s.bind(('10.77.0.1', 5514)); print('ready', flush=True);"
         "s.settimeout(20); print(s.recv(4096).decode(), flush=True)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        lab.run("lab-db1", "logger -n 10.77.0.1 -P 5514 -d -t dcops-test hello-from-db1")
        message = listener.stdout.readline()
        assert "dcops-test" in message
        assert "hello-from-db1" in message
    finally:
        listener.kill()
        listener.wait()


def test_exec_runs_as_root_inside_the_host(lab: Lab) -> None:
    out = lab.exec("lab-backup1", ["sh", "-c", "hostname; id -u; cat /proc/1/comm"])
    assert out.stdout.split() == ["lab-backup1", "0", "sshd"]


def test_this_machine_network_is_untouched(lab: Lab) -> None:
    root_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True,
                                check=True).stdout
    assert "10.77.0." not in root_addrs
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    assert "10.77.0." not in routes


def _ansible_ping(lab: Lab, *inventory_args: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[3]
    ansible = str(Path(sys.executable).with_name("ansible"))
    limit = ",".join(h.name for h in lab.hosts)
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo / "ansible.cfg"))
    return subprocess.run([ansible, *inventory_args, "lab_hosts", "--limit", limit, "-o",
                           "-m", "ansible.builtin.ping"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False, timeout=180)


def test_ansible_reaches_the_hosts_with_the_committed_inventory(lab: Lab) -> None:
    result = _ansible_ping(lab, "-i", "inventories/lab", "-e", f"dcops_lab_name={lab.name}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 3


def test_ansible_reaches_the_hosts_with_the_generated_inventory(lab: Lab) -> None:
    result = _ansible_ping(lab, "-i", "inventories/lab", "-i", str(lab.inventory_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == 3
