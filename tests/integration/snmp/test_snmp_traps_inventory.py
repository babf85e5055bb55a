"""`dcops collect traps -i inventories/lab`: v3 users come from the inventory's Vault.

net-snmp `snmptrap` sends v3 authPriv traps with the lab device credentials as the test decrypts
them with the lab vault password; the receiver knows them only through the inventory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from snmp_it_helpers import free_tcp_port, need, stop, wait_http

from dcops.inventory import load_inventory
from dcops.lab.snmp import free_udp_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[3]
LAB = ROOT / "inventories" / "lab"
DCOPS = [sys.executable, "-c", "from dcops.cli import main; main()"]
ROUTER = "lab-bien-hoa-rtr1"  # 127.0.1.21 in the lab inventory: traps from there name it


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def test_v3_authpriv_trap_with_vault_credentials_from_the_lab_inventory(tmp_path: Path) -> None:
    need("snmptrap")
    model = load_inventory(LAB)  # the lab's .vault-pass-LAB-ONLY decrypts the Vault values
    router = model.devices[ROUTER]
    cred = model.devices["lab-dc1-core-sw1"].snmp  # the lab's v3 authPriv user
    assert cred is not None and cred.version == "3"
    assert cred.user and cred.auth_key and cred.priv_key
    port = free_udp_ports(1)[0]
    mport = free_tcp_port()
    out = tmp_path / "events.jsonl"
    rx = subprocess.Popen([*DCOPS, "collect", "traps", "-i", str(LAB), "--listen",
                           f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{mport}",
                           "--no-spool", "--events-out", str(out)],
                          cwd=ROOT, stderr=(tmp_path / "traps.log").open("wb"))
    try:
        wait_http(f"http://127.0.0.1:{mport}/metrics", 60)
        v3 = ["-v", "3", "-u", cred.user, "-l", "authPriv", "-a", cred.auth_protocol or "SHA",
              "-A", cred.auth_key.reveal(), "-x", cred.priv_protocol or "AES",
              "-X", cred.priv_key.reveal(), "-e", "0x80001f8803aabbccddeeff",
              f"--clientaddr={router.address}"]
        link_down = ["1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1",
                     "1.3.6.1.2.1.2.2.1.2.1", "s", "GigabitEthernet0/0/0",
                     "1.3.6.1.2.1.2.2.1.7.1", "i", "1", "1.3.6.1.2.1.2.2.1.8.1", "i", "2"]
        dst = f"127.0.0.1:{port}"
        env = {**os.environ, "MIBS": ":", "SNMPCONFPATH": str(tmp_path)}  # no ~/.snmp state
        wrong = [*v3[:13], "not-the-priv-key", *v3[14:]]  # authenticates, does not decrypt
        assert v3[12] == "-X"
        for cmd in (["snmptrap", *v3, dst, "", *link_down],
                    ["snmptrap", *wrong, dst, "", "1.3.6.1.6.3.1.1.5.1"],
                    ["snmptrap", "-v", "2c", "-c", "spoofed", dst, "", "1.3.6.1.6.3.1.1.5.1"]):
            subprocess.run(cmd, check=True, env=env, timeout=30, capture_output=True)

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                return str(r.read().decode())

        deadline = time.monotonic() + 30
        text = metrics()
        while time.monotonic() < deadline and not (
                _events(out) and 'reason="unknown_community"' in text
                and 'reason="usm"' in text):
            time.sleep(0.2)
            text = metrics()
    finally:
        stop(rx)
    events = _events(out)
    assert len(events) == 1, (events, (tmp_path / "traps.log").read_text())
    f = events[0]["fields"]
    assert (f["snmp.version"], f["snmp.pdu"], f["snmp.trap.name"]) == ("3", "trap", "linkDown")
    assert f["user.name"] == cred.user
    assert (f["source.ip"], f["observer.name"], f["host.name"]) == (router.address, ROUTER, ROUTER)
    assert (f["event.action"], f["interface.id"], f["interface.name"]) == \
        ("interface-down", "1", "GigabitEthernet0/0/0")
    assert (f["interface.admin_status"], f["interface.oper_status"]) == (1, 2)
    assert events[0]["logsource"] == {"product": "snmp", "service": "trap",
                                      "category": "network"}
    assert 'dcops_snmp_traps_received_total{pdu="trap",version="3"} 1.0' in text
    assert 'dcops_snmp_trap_refused_total{reason="usm"} 1.0' in text
    assert 'dcops_snmp_trap_refused_total{reason="unknown_community"} 1.0' in text
