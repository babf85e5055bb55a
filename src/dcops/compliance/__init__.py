"""dcops.compliance: control catalogue (data), evidence collectors, assessment and reports."""

from __future__ import annotations

from dcops.compliance.assess import Assessor, annual_period
from dcops.compliance.catalogue import (
    CatalogueError,
    Control,
    Profile,
    load_catalogue,
    load_profile,
)
from dcops.compliance.evidence import Document, Evidence, EvidenceCollector, EvidenceRecord
from dcops.compliance.findings import Finding, SystemReport, Verdict

__all__ = [
    "Assessor",
    "CatalogueError",
    "Control",
    "Document",
    "Evidence",
    "EvidenceCollector",
    "EvidenceRecord",
    "Finding",
    "Profile",
    "SystemReport",
    "Verdict",
    "annual_period",
    "load_catalogue",
    "load_profile",
]
