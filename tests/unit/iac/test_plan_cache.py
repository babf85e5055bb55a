"""The audit's plan cache: a reused plan gives the same verdicts, any change plans again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from dcops import iac
from dcops.iac.plancache import KEEP, cached_plan, plan_key
from dcops.model.site import SiteModel


class Counting:
    """The real planner, counted."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, model: SiteModel, stack: str) -> Any:
        self.calls.append(stack)
        return iac.plan(model, stack)


def _verdicts(model: SiteModel, plan: Any, stack: str) -> list[str]:
    return sorted(str(v) for v in iac.evaluate(plan, iac.PolicyContext.from_model(model, stack)))


def test_a_reused_plan_gives_the_same_resources_and_verdicts(model: SiteModel,
                                                              tmp_path: Path) -> None:
    planner = Counting()
    for stack in ("primary", "backup"):
        fresh, key, hit = cached_plan(model, stack, tmp_path, planner)
        again, key2, hit2 = cached_plan(model, stack, tmp_path, planner)
        assert (hit, hit2, key) == (False, True, key2)
        assert [(r.type, r.name, r.id, r.stack) for r in again.resources] == \
               [(r.type, r.name, r.id, r.stack) for r in fresh.resources]
        assert json.loads(json.dumps(dict(again.resources[-1].properties), default=str)) == \
               json.loads(json.dumps(dict(fresh.resources[-1].properties), default=str))
        assert _verdicts(model, again, stack) == _verdicts(model, fresh, stack)
    assert planner.calls == ["primary", "backup"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.glob("plan-*.json"))


def test_a_changed_host_stack_or_program_plans_again(model: SiteModel, tmp_path: Path) -> None:
    key = plan_key(model, "primary")
    moved = replace(model, hosts={**model.hosts, "lgsp-db1": replace(
        model.hosts["lgsp-db1"], volume_gb=600)})
    assert plan_key(moved, "primary") != key
    assert plan_key(model, "backup") != key
    assert plan_key(model, "primary") == key
    program = tmp_path / "program"
    (program / "components").mkdir(parents=True)
    (program / "components" / "tenant.py").write_text("X = 1\n")
    other = plan_key(model, "primary", program)
    (program / "components" / "tenant.py").write_text("X = 2\n")
    assert plan_key(model, "primary", program) != other


def test_a_damaged_entry_is_planned_again_and_old_entries_go(model: SiteModel,
                                                             tmp_path: Path) -> None:
    planner = Counting()
    _, key, _ = cached_plan(model, "primary", tmp_path, planner)
    (tmp_path / f"plan-{key}.json").write_text('{"stack": "primary", "resources": [')
    _, _, hit = cached_plan(model, "primary", tmp_path, planner)
    assert not hit and planner.calls == ["primary", "primary"]
    assert json.loads((tmp_path / f"plan-{key}.json").read_text())["stack"] == "primary"
    for i in range(KEEP + 5):
        (tmp_path / f"plan-old{i:03}.json").write_text("{}")
    cached_plan(replace(model, inventory_dir="elsewhere"), "primary", tmp_path, planner)
    assert len(list(tmp_path.glob("plan-*.json"))) == KEEP
