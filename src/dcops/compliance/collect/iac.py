"""Evidence from the IaC model: the Pulumi program planned offline and its policies evaluated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcops.compliance.evidence import Evidence
from dcops.errors import DcopsError
from dcops.model import SiteKind, SiteModel

PUBLIC_ADMIN = {"no-public-ingress", "ssh-from-mgmt-only"}

Planner = Callable[[SiteModel, str], Any]  # (model, stack) -> dcops.iac.Plan


class IacCollector:
    """Plans the primary and backup stacks under mocks and records zones and violations."""

    name = "iac"

    def __init__(self, planner: Planner | None = None, cache_dir: Path | None = None) -> None:
        """`planner` replaces `dcops.iac.plan` (what-if plans, recorded plans); with
        `cache_dir`, a plan of the same model, stack and program is reused
        (`dcops.iac.plancache`) and the evidence says so."""
        self.planner = planner
        self.cache_dir = cache_dir

    def _plan(self, model: SiteModel, stack: str, how: list[str]) -> Any:
        """The stack's plan, from the cache when the model, stack and program are unchanged."""
        from dcops import iac

        planner = self.planner or iac.plan
        if self.cache_dir is None:
            return planner(model, stack)
        from dcops.iac.plancache import cached_plan

        plan, key, hit = cached_plan(model, stack, self.cache_dir, planner)
        how.append(f"plan of stack {stack}: {'reused from the cache' if hit else 'planned'} "
                   f"(model + program sha256 {key[:16]}…)")
        return plan

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Facts per system: iac.zones, iac.default_deny, iac.public_admin_rules, DR twins."""
        from dcops import iac

        stacks = ["primary"] + (["backup"] if model.sites_of(SiteKind.BACKUP_DC) else [])
        plans, violations = {}, []
        how: list[str] = []
        for stack in stacks:
            try:
                plans[stack] = self._plan(model, stack, how)
                violations += [(stack, v) for v in iac.evaluate(
                    plans[stack], iac.PolicyContext.from_model(model, stack))]
            except (DcopsError, ValueError, KeyError, ImportError) as exc:
                evidence.notes.append(f"iac: cannot plan stack {stack}: {exc}")
        if "primary" not in plans:
            return
        owner = {r.name: r.system for p in plans.values() for r in p.resources}
        for system in model.systems.values():
            mine = [(s, v) for s, v in violations
                    if owner.get(v.resource) == system.name or system.name in v.message
                    or system.name in v.resource]
            text = "\n".join(f"{s}: {v}" for s, v in mine) or "no policy violation"
            rid = evidence.record("iac", system.name, "pulumi/ (mocks)",
                                  "dcops.iac.plan + dcops.iac.evaluate",
                                  "\n".join([text, *how]), name="plan")
            zones = sorted({r.zone for r in plans["primary"].resources
                            if r.system == system.name and r.zone})
            subject = f"system:{system.name}"
            evidence.fact(subject, "iac.zones", zones, rid, f"zones: {', '.join(zones)}")
            deny = [str(v) for _, v in mine if v.policy == "zone-default-deny"]
            evidence.fact(subject, "iac.default_deny", not deny, rid, "\n".join(deny) or
                          "zone-default-deny: no violation")
            public = [str(v) for _, v in mine if v.policy in PUBLIC_ADMIN]
            evidence.fact(subject, "iac.public_admin_rules", public, rid,
                          "\n".join(public) or "no administration rule open to 0.0.0.0/0")
            if "backup" in plans:
                twins = [str(v) for s, v in mine if v.policy == "dr-twins"]
                evidence.fact(subject, "iac.dr_twins_missing", twins, rid,
                              "\n".join(twins) or "every DR unit has a backup twin")
