"""systemd mode: real systemd boots in each host, services and timers can be managed."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dcops.lab import Lab

pytestmark = pytest.mark.integration

LabFactory = Callable[..., Lab]


def test_systemd_hosts_boot_and_run_units(lab_factory: LabFactory) -> None:
    lab = lab_factory(hosts=2, mode="systemd")
    for host in lab.hosts:
        state = lab.run(host.name, "systemctl is-system-running --wait", check=False,
                        timeout=60).stdout.strip()
        assert state in ("running", "degraded")
        assert lab.run(host.name, "cat /proc/1/comm").stdout.strip() == "systemd"
        assert lab.run(host.name, "systemctl is-active ssh").stdout.strip() == "active"
    # a transient timer fires: roles can rely on systemd timers in this mode
    lab.run("lab-app1", "sudo systemd-run --on-active=1 --timer-property=AccuracySec=100ms "
                        "--unit=dcops-probe "
                        "touch /run/dcops-timer-fired")
    deadline = time.monotonic() + 60
    while lab.run("lab-app1", "test -e /run/dcops-timer-fired", check=False).returncode:
        assert time.monotonic() < deadline, "systemd timer did not fire"
        time.sleep(0.5)
    # net.* sysctls are writable (hardening roles set them)
    lab.run("lab-db1", "sudo sysctl -w net.ipv4.conf.all.rp_filter=1")
