"""Fixtures of the iac tests over the small province of iac_model."""

from __future__ import annotations

import pytest
from iac_model import build_model

from dcops.model.site import SiteModel


@pytest.fixture
def model() -> SiteModel:
    """The small province."""
    return build_model()


@pytest.fixture(scope="session")
def plans() -> dict[str, object]:
    """Primary and backup plans of the small province (computed once: ~1 s each)."""
    from dcops.iac import plan

    base = build_model()
    return {"model": base, "primary": plan(base, "primary"), "backup": plan(base, "backup")}
