"""`up` converges: growing adds hosts (and names them everywhere), shrinking removes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dcops.errors import LabError
from dcops.lab import Lab

pytestmark = pytest.mark.integration

LabFactory = Callable[..., Lab]


def test_grow_then_shrink(lab_factory: LabFactory) -> None:
    lab = lab_factory(hosts=1)
    assert [h.name for h in lab.hosts] == ["lab-app1"]
    lab.up(hosts=2)
    assert [h.name for h in lab.hosts] == ["lab-app1", "lab-db1"]
    assert "10.77.0.12\tlab-db1" in lab.run("lab-app1", "cat /etc/hosts").stdout
    assert lab.run("lab-db1", "hostname").stdout.strip() == "lab-db1"
    lab.up(hosts=1)
    assert [h.name for h in lab.hosts] == ["lab-app1"]
    assert not Path(f"/run/netns/{lab.name}-lab-db1").exists()
    assert lab.run("lab-app1", "hostname").stdout.strip() == "lab-app1"


def test_mode_change_needs_down_first(lab_factory: LabFactory) -> None:
    lab = lab_factory(hosts=1)
    with pytest.raises(LabError, match="run `dcops lab down --name"):
        lab.up(hosts=1, mode="systemd")
