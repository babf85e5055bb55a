"""What users run: `dcops collect snmp --once` on the lab inventory, `collect traps` errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from snmp_it_helpers import free_tcp_port, need, wait_http

from dcops.errors import LabError
from dcops.inventory import load_inventory
from dcops.lab.snmp import agents_for_devices

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]
LAB = ROOT / "inventories" / "lab"
DCOPS = [sys.executable, "-c", "from dcops.cli import main; main()"]


def test_collect_snmp_once_polls_every_lab_device(tmp_path: Path) -> None:
    need("snmpd")
    model = load_inventory(LAB)
    agents = agents_for_devices(model.devices.values(), tmp_path)
    try:
        for a in agents:
            a.start()
    except LabError as exc:
        for a in agents:
            a.stop()
        pytest.skip(f"lab SNMP ports busy (a lab is running?): {exc}")
    try:
        out = tmp_path / "events.jsonl"
        env = {**os.environ, "DCOPS_STATE_DIR": str(tmp_path / "state")}
        p = subprocess.run([*DCOPS, "collect", "snmp", "-i", str(LAB), "--once",
                            "--events-out", str(out)], capture_output=True, text=True,
                           cwd=ROOT, timeout=120, check=False, env=env)
        assert p.returncode == 0, p.stderr
        for name in model.devices:
            assert f"{name}: up" in p.stderr.replace("\n", " "), p.stderr
        assert out.read_text() == ""  # everything up: no state change to report
        assert (tmp_path / "state" / "spool.db").exists()  # the SOC spool is wired by default

        port = free_tcp_port()
        svc = subprocess.Popen([*DCOPS, "collect", "snmp", "-i", str(LAB), "--interval", "1",
                                "--listen", f"127.0.0.1:{port}", "--no-spool"], cwd=ROOT,
                               stderr=subprocess.PIPE)
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics", 60)
            text = ""
            for _ in range(40):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                    text = r.read().decode()
                if "dcops_snmp_up{" in text:
                    break
                time.sleep(0.25)
            ups = [ln for ln in text.splitlines() if ln.startswith("dcops_snmp_up{")]
            assert len(ups) == len(model.devices)
            assert all(ln.endswith(" 1.0") for ln in ups), ups
        finally:
            svc.terminate()
            svc.wait(10)
    finally:
        for a in agents:
            a.stop()


def test_collect_traps_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        p = subprocess.run([*DCOPS, "collect", "traps", "-i", str(LAB), "--listen",
                            f"127.0.0.1:{port}", "--no-spool"], capture_output=True,
                           text=True, cwd=ROOT, timeout=120, check=False)
    assert p.returncode == 1
    assert f"cannot receive traps on udp 127.0.0.1:{port}" in p.stderr
    assert "in use" in p.stderr
