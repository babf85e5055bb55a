"""The manual evidence registry: documents (regulation, approval, plans, tests) with dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from dcops.compliance.catalogue import CatalogueError
from dcops.compliance.evidence import Document, Evidence

REQUIRED = ("key", "title", "issued")


class _DatesAsText(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date is reported with its key."""


_DatesAsText.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _date(value: Any, where: str, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise CatalogueError(f"{key} must be a date YYYY-MM-DD, got {value!r}",
                             file=where, key=key) from exc


def registry_body(data: dict[str, Any]) -> dict[str, Any]:
    """The registry mapping: plain, or as `all.vars.dcops_compliance_evidence` (inventory form)."""
    inner = ((data.get("all") or {}).get("vars") or {}).get("dcops_compliance_evidence")
    return dict(inner) if isinstance(inner, dict) else data


def load_registry(path: Path) -> list[Document]:
    """Documents of `compliance/evidence.yml`; errors name the file and the entry."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsText) or {}  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the evidence registry: {exc}", file=str(path)) from exc
    docs = []
    for i, raw in enumerate(registry_body(data).get("documents") or []):
        key = f"documents[{i}]"
        missing = [k for k in REQUIRED if not raw.get(k)]
        if missing:
            raise CatalogueError(f"document lacks {', '.join(missing)}", file=str(path), key=key)
        docs.append(Document(
            key=str(raw["key"]), title=str(raw["title"]),
            issued=_date(raw["issued"], str(path), f"{key}.issued"),
            expires=_date(raw["expires"], str(path), f"{key}.expires")
            if raw.get("expires") else None,
            reference=str(raw.get("reference", "")), owner=str(raw.get("owner", "")),
            system=str(raw.get("system", "")), location=str(raw.get("location", ""))))
    return docs


class ManualCollector:
    """Adds the registry's documents to the evidence (one record for the file)."""

    name = "manual"

    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self, model: object, evidence: Evidence) -> None:
        """Load the registry if present; absent registry: every manual control stays manual."""
        del model
        if not self.path.exists():
            evidence.notes.append(f"manual: no evidence registry at {self.path}")
            return
        docs = load_registry(self.path)
        evidence.record("manual", "registry", str(self.path), f"read {self.path}",
                        "\n".join(f"{d.key}: {d.reference} {d.issued}" for d in docs),
                        name="registry")
        evidence.documents.extend(docs)
