"""Evidence: what each collector ran, where, when and what it saw, and the facts it derived."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from dcops.model import SiteModel

MAX_OUTPUT = 4000  # characters of raw output kept per record


def strict_json(data: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """JSON text that any strict parser reads: NaN and Infinity are refused, never written."""
    from dcops.errors import ComplianceError

    try:
        return json.dumps(data, ensure_ascii=False, indent=indent, sort_keys=sort_keys,
                          default=str, allow_nan=False)
    except ValueError as exc:
        raise ComplianceError(f"cannot write strict JSON: {exc} (a collector produced NaN or "
                              "Infinity; 'never' must be null with a reason)") from exc


def strict_loads(text: str) -> Any:
    """Parse JSON, refusing the NaN/Infinity/-Infinity extensions Python accepts by default."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def utcnow() -> datetime:
    """The current time, UTC, second precision."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One thing a collector did: the command or file, the target, the time, the output."""

    id: str
    collector: str
    target: str
    where: str
    command: str
    ran_at: str
    rc: int | None = None
    output: str = ""
    host_key: str = ""  # the SSH host key checked for this session: "<type> SHA256:<b64>"


@dataclass(frozen=True, slots=True)
class Fact:
    """A value derived from a record, with the excerpt that shows it."""

    value: Any
    record: str
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    """A manual evidence document from the registry (compliance/evidence.yml)."""

    key: str
    title: str
    issued: date
    expires: date | None = None
    reference: str = ""  # decision number, report id
    owner: str = ""
    system: str = ""  # empty: applies to every system
    location: str = ""  # where the signed copy is kept


@dataclass(slots=True)
class Evidence:
    """Everything collected for one assessment run."""

    collected_at: str = field(default_factory=lambda: iso(utcnow()))
    records: dict[str, EvidenceRecord] = field(default_factory=dict)
    facts: dict[str, dict[str, Fact]] = field(default_factory=dict)  # subject -> fact -> Fact
    documents: list[Document] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # collectors that could not run, and why

    def record(self, collector: str, target: str, where: str, command: str, output: str,
               rc: int | None = None, ran_at: str | None = None, name: str = "",
               host_key: str = "") -> str:
        """Add a record and return its id (collector:target:name)."""
        label = name or (command.split(maxsplit=1)[0] if command else "file")
        rid = f"{collector}:{target}:{label}"
        n, base = 1, rid
        while rid in self.records:
            n += 1
            rid = f"{base}#{n}"
        self.records[rid] = EvidenceRecord(rid, collector, target, where, command,
                                           ran_at or iso(utcnow()), rc, output[:MAX_OUTPUT],
                                           host_key)
        return rid

    def fact(self, subject: str, name: str, value: Any, record: str, excerpt: str = "") -> None:
        """Set a fact of a subject (a host name, `system:NAME` or `global`)."""
        self.facts.setdefault(subject, {})[name] = Fact(value, record, excerpt[:400])

    def get(self, subject: str, name: str) -> Fact | None:
        """A fact of a subject, or None when nothing was seen."""
        return self.facts.get(subject, {}).get(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (recorded evidence for replay and for the report hash)."""
        return {
            "collected_at": self.collected_at,
            "records": [asdict(r) for r in self.records.values()],
            "facts": {s: {n: asdict(f) for n, f in sorted(fs.items())}
                      for s, fs in sorted(self.facts.items())},
            "documents": [{**asdict(d), "issued": d.issued.isoformat(),
                           "expires": d.expires.isoformat() if d.expires else None}
                          for d in self.documents],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        """Rebuild recorded evidence."""
        ev = cls(collected_at=data["collected_at"], notes=list(data.get("notes", [])))
        for r in data.get("records", []):
            ev.records[r["id"]] = EvidenceRecord(**r)
        for subject, facts in data.get("facts", {}).items():
            for name, f in facts.items():
                ev.facts.setdefault(subject, {})[name] = Fact(**f)
        for d in data.get("documents", []):
            ev.documents.append(Document(**{
                **d, "issued": date.fromisoformat(d["issued"]),
                "expires": date.fromisoformat(d["expires"]) if d.get("expires") else None}))
        return ev

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of all evidence: printed on the report cover."""
        blob = strict_json(self.to_dict(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


class EvidenceCollector(Protocol):
    """A source of evidence: adds records and facts for the model's hosts and systems."""

    name: str

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Gather evidence; record what could not be reached in `evidence.notes`."""
