"""Fixtures: a tiny site model and recorded host probe output (as a lab host printed it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.model import Host, Settings, SiteModel, System, Zone

DATA = Path(__file__).parent / "data"


@pytest.fixture
def model() -> SiteModel:
    """One level-3 system on two hosts."""
    system = System("lgsp", "LGSP", "Nền tảng LGSP", 3, "Sở KH&CN", "primary-dc",
                    zones=(Zone.DMZ, Zone.APP), approval="1234/QĐ-UBND")
    hosts = {n: Host(n, a, "primary-dc", systems=("lgsp",), ha_group="g", services=s)
             for n, a, s in (("h1", "10.0.0.1", ()), ("h2", "10.0.0.2", ("postgresql",)))}
    return SiteModel(Settings(), systems={"lgsp": system}, hosts=hosts)


@pytest.fixture
def hardened_output() -> str:
    """The probe script's output recorded on a host after the baseline."""
    return (DATA / "hardened.txt").read_text(encoding="utf-8")


@pytest.fixture
def bare_output() -> str:
    """The probe script's output recorded on a fresh debootstrap host."""
    return (DATA / "bare.txt").read_text(encoding="utf-8")
