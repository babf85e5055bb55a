"""recdevice: snmpsim-data recordings parsed into the shape a bench device is built from."""

from __future__ import annotations

import bz2
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "bench"))

from recdevice import linux_names, load_recording

REC = """# a recorded L3 switch
1.3.6.1.2.1.1.1.0|4x|5275696a6965
1.3.6.1.2.1.1.5.0|4|sw1
1.3.6.1.2.1.2.2.1.2.1|4|GigabitEthernet0/1
1.3.6.1.2.1.2.2.1.2.2|4|GigabitEthernet0/2
1.3.6.1.2.1.31.1.1.1.1.1|4x|4769302f31
1.3.6.1.2.1.4.20.1.2.10.1.1.1|2|2
1.3.6.1.2.1.4.20.1.3.10.1.1.1|64x|ffffff00
1.3.6.1.2.1.4.24.4.1.5.10.9.0.0.255.255.0.0.0.10.1.1.254|2|2
1.3.6.1.2.1.4.24.4.1.5.10.8.0.0.252.255.255.255.0.10.1.1.254|2|2
1.3.6.1.2.1.4.24.7.1.7.1.4.172.16.0.0.12.2.0.0.1.4.10.1.1.254|2|1
"""


def test_recording_parsed(tmp_path: Path) -> None:
    p = tmp_path / "sw.snmprec.bz2"
    p.write_bytes(bz2.compress(REC.encode()))
    rec = load_recording(p)
    assert rec.name == "sw"
    assert rec.interfaces == {1: "Gi0/1", 2: "GigabitEthernet0/2"}  # ifName over ifDescr
    assert rec.addresses == [("10.1.1.1", 24, 2)]
    # the malformed mask 252.255.255.255 is dropped, not guessed
    assert sorted(rec.routes) == [("10.9.0.0", 16, 2), ("172.16.0.0", 12, 1)]
    assert rec.system == {"sysDescr": "Ruijie", "sysName": "sw1"}


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.snmprec"
    p.write_text("1.3.6.1.2.1.1.5.0|4|ok\nnot a record\n")
    with pytest.raises(ValueError, match=r"bad.snmprec:2: expected OID\|TYPE\|VALUE"):
        load_recording(p)


def test_linux_names_are_legal_and_distinct() -> None:
    names = linux_names({1: "GigabitEthernet0/0/1", 2: "TenGigabitEthernet1/0/48:1",
                         3: "Port channel 1", 4: "mgmt", 5: "x" * 30, 6: "x" * 30})
    assert names[1] == "GE0-0-1" and names[2] == "Te1-0-48-1" and names[3] == "Portchannel1"
    assert names[4] != "mgmt"  # the namespace's own management port keeps that name
    assert len(set(names.values())) == 6
    assert all(len(n) <= 15 and "/" not in n and " " not in n for n in names.values())
