"""Enumerated option values, so typer refuses a value outside them before a command runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Severity(StrEnum):
    """Alert severities (Sigma levels; dcops.alerts.config.SEVERITIES)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFORMATIONAL = "informational"


#: Console roles (dcops.model.rbac.ROLES).
Role = Literal["analyst", "engineer", "auditor", "admin"]

#: Compliance regimes of the control catalogue.
Regime = Literal["tt12", "nd331"]

#: The highest TCP/UDP port number.
MAX_PORT = 65535
