"""Evidence from the IaC model: the Pulumi program planned offline and its policies evaluated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcops.compliance.evidence import Evidence
from dcops.errors import DcopsError
from dcops.model import SiteKind, SiteModel

PUBLIC_ADMIN = {"no-public-ingress", "ssh-from-mgmt-only"}

Planner = Callable[[SiteModel, str], Any]  # (model, stack) -> dcops.iac.Plan


class IacCollector:
    """Plans the primary and backup stacks under mocks and records zones and violations."""

    name = "iac"

    def __init__(self, planner: Planner | None = None) -> None:
        """`planner` replaces `dcops.iac.plan` (what-if plans, recorded plans)."""
        self.planner = planner

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Facts per system: iac.zones, iac.default_deny, iac.public_admin_rules, DR twins."""
        from dcops import iac

        stacks = ["primary"] + (["backup"] if model.sites_of(SiteKind.BACKUP_DC) else [])
        plans, violations = {}, []
        for stack in stacks:
            try:
                plans[stack] = (self.planner or iac.plan)(model, stack)
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
                                  "dcops.iac.plan + dcops.iac.evaluate", text, name="plan")
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
