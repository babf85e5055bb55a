"""The event_bus role converged on three lab hosts, then the JetStream bus of dcops through it.

The role's molecule scenario (pki_ca, pki_cert, event_bus on lab-app1, lab-db1, lab-backup1) is
applied by ansible-playbook to a lab of its own; a detection user creates R3 streams and a collector
user publishes over mutual TLS with a lab host's certificate, from the lab's controller namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from natscluster import in_netns

from dcops.errors import ConfigError
from dcops.model.event import Event, LogSource
from dcops.pipeline.jetstream import BusUnavailableError, JetStreamBus

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "playbooks" / "roles" / "event_bus"
NODES = {"lab-app1": "10.77.0.11", "lab-db1": "10.77.0.12", "lab-backup1": "10.77.0.13"}
PASSWORDS = {"detect": "molecule-detect-0123456789", "collector": "molecule-collector-0123456789"}

FETCH = """\
- name: A client certificate for the test (lab-app1's host certificate, clientAuth)
  hosts: lab-app1
  become: true
  gather_facts: false
  tasks:
    - name: Fetch certificate, key and CA chain
      ansible.builtin.fetch:
        src: "{{ item }}"
        dest: "{{ out }}/"
        flat: true
      loop: [/etc/ssl/dcops/host.crt, /etc/ssl/private/dcops-host.key, /etc/ssl/dcops/chain.pem]
"""


def _playbook(lab: str, play: Path, *extra: str) -> str:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_ROLES_PATH=str(REPO / "playbooks" / "roles"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"), DCOPS_CHANGE_DISABLE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        ["ansible-playbook", "-i", "inventories/lab", "-e", f"dcops_lab_name={lab}",
         "--vault-password-file", "inventories/lab/.vault-pass-LAB-ONLY", str(play), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc.stdout


def ev(i: int) -> Event:
    return Event(f"role{i}", datetime.now(UTC), "syslog_role", LogSource("linux", "sshd"),
                 {"site.name": "primary-dc", "n": i}, raw=f"line {i}")


def test_event_bus_role_carries_the_jetstream_bus_over_tls(lab_factory: Callable[..., Any],
                                                           tmp_path: Path) -> None:
    lab = lab_factory(hosts=3, mode="systemd")
    _playbook(lab.name, ROLE / "molecule" / "default" / "converge.yml")
    (tmp_path / "fetch.yml").write_text(FETCH, encoding="utf-8")
    creds = tmp_path / "creds"
    creds.mkdir()
    _playbook(lab.name, tmp_path / "fetch.yml", "-e", f"out={creds}")
    for user, password in PASSWORDS.items():
        (creds / f"{user}.pw").write_text(password + "\n", encoding="utf-8")
        (creds / f"{user}.pw").chmod(0o600)

    def url(user: str, *, client_cert: bool = True, **extra: str) -> str:
        q = {"replicas": "3", "ca": str(creds / "chain.pem"), "user": user,
             "password_file": str(creds / f"{user}.pw"), **extra}
        if client_cert:
            q |= {"cert": str(creds / "host.crt"), "key": str(creds / "dcops-host.key")}
        servers = ",".join(f"{ip}:4222" for ip in NODES.values())
        return f"tls://{servers}?" + "&".join(f"{k}={v}" for k, v in q.items())

    ctl = f"{lab.name}-ctl"
    detect = in_netns(ctl, lambda: JetStreamBus(url("detect"), publish_timeout=20))
    try:
        detect.register("detect")
        collector = in_netns(ctl, lambda: JetStreamBus(url("collector", create="false"),
                                                        publish_timeout=20))
        try:
            collector.publish([ev(i) for i in range(300)])
            collector.publish([ev(7)])  # a retried event: stored once
            assert collector.backlog() == 300
            with pytest.raises(BusUnavailableError, match=r"(?i)permissions violation"):
                collector.ack("detect", 300)  # the role's collector permissions hold
        finally:
            collector.close()
        got = detect.fetch("detect", 1000)
        assert [e.fields["n"] for _, e in got] == list(range(300))
        detect.ack("detect", got[-1][0])
        print(f"\nevent_bus role on {', '.join(NODES)}: 300 events published by collector "
              f"over mTLS to an R3 stream, 300 fetched by detect, 1 duplicate dropped")
    finally:
        detect.close()

    # without a client certificate the nodes refuse the connection (verify: true)
    def no_cert() -> BaseException | None:
        try:
            JetStreamBus(url("detect", client_cert=False), publish_timeout=3).close()
        except Exception as exc:  # any refusal by the nodes is the expected outcome
            return exc
        return None

    refused = in_netns(ctl, no_cert)
    assert refused is not None, "a client without a certificate was let in"
    assert not isinstance(refused, ConfigError), refused  # refused by the nodes, not by dcops
