"""Shared integration fixtures: lab hosts that are always torn down (`lab_factory`)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dcops.lab import Lab

LabFactory = Callable[..., Lab]


def _require_lab_support() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, overlay mounts)")
    for tool in ("ip", "nsenter", "unshare", "debootstrap", "nc", "ssh"):
        if shutil.which(tool) is None:
            pytest.skip(f"the lab needs {tool} (scripts/apt-packages.txt)")


def new_lab_name(prefix: str = "t") -> str:
    """A short unique lab name (it becomes part of namespace names)."""
    return f"{prefix}{secrets.token_hex(3)}"


def _factory() -> Iterator[LabFactory]:
    started: list[Lab] = []

    def make(name: str | None = None, hosts: int = 3, mode: str = "chroot") -> Lab:
        _require_lab_support()
        lab = Lab(name or new_lab_name())
        started.append(lab)  # before up(): a half-started lab is torn down too
        lab.up(hosts=hosts, mode=mode)
        return lab

    try:
        yield make
    finally:
        for lab in reversed(started):
            lab.down()


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    """`lab_factory(name=None, hosts=3, mode="chroot") -> Lab`, torn down after the test."""
    yield from _factory()


@pytest.fixture(scope="module")
def module_lab_factory() -> Iterator[LabFactory]:
    """Like `lab_factory`, shared by the tests of one module and torn down after the last."""
    yield from _factory()



@pytest.fixture(scope="module")
def audit_sidecar_turn() -> Iterator[None]:
    """The kernel registers one audit daemon per machine, and pytest-xdist runs test modules side
    by side: the modules that start the lab's audit sidecar take turns (a machine-wide lock held
    for the whole module), instead of one skipping or failing when the other holds the kernel."""
    from dcops.lab.image import file_lock

    with file_lock(Path(tempfile.gettempdir()) / "dcops-tests-audit-sidecar.lock"):
        yield
