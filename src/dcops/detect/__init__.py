"""Sigma detection: load rules (pySigma), compile to indexed matchers, correlate, detect."""

from __future__ import annotations

from dcops.detect.engine import Engine
from dcops.detect.loader import Rejected, RuleSet, load_rules

__all__ = ["Engine", "Rejected", "RuleSet", "load_rules"]
