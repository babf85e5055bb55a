"""Fixtures for SNMP integration tests: real snmpd agents, lab devices, free ports, processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from snmp_it_helpers import COMMUNITY, need

from dcops.lab.snmp import Snmpd, free_udp_ports


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    """One real snmpd answering on 4 ports with v2c and two v3 authPriv users."""
    need("snmpd")
    agent = Snmpd(tmp_path / "snmpd", free_udp_ports(4), community=COMMUNITY)
    with agent:
        yield agent


