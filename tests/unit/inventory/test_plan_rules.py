"""The example inventories fit their address plan as written (the mistakes: test_mistakes.py)."""

from __future__ import annotations

from pathlib import Path

from dcops.inventory import check_inventory, load_inventory
from dcops.inventory.planchecks import plan_problems

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = REPO / "inventories" / "production"


def test_examples_fit_their_address_plan() -> None:
    model = load_inventory(PRODUCTION)
    assert plan_problems(model) == []
    assert all(not h.dhcp for h in model.hosts.values())  # every address is a fixed IP
    _, lab_problems = check_inventory(REPO / "inventories" / "lab")
    assert lab_problems == []
