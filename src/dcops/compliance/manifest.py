"""The evidence manifest: a SHA-256 per evidence item, of the findings and of the report.

`manifest.json` sits beside the report and is embedded in report.pdf, so the PDF signature
covers it. Its `manifest_sha256` (SHA-256 of the canonical JSON of every field but itself and
`report`, which holds the HTML's hash and so cannot be known before the HTML is written) is
printed on the report. `check` recomputes every hash from the files and names what differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dcops.compliance.evidence import Evidence, EvidenceRecord, strict_json, strict_loads

FORMAT = "dcops-audit-manifest/1"
MANIFEST_FILE = "manifest.json"
EVIDENCE_FILE = "evidence.json"
FINDINGS_FILE = "findings.json"
HTML_FILE = "report.html"
#: Roles of the approval block, in signing order, with their bilingual labels.
APPROVAL_ROLES: dict[str, tuple[str, str]] = {
    "prepared_by": ("Người lập", "Prepared by"),
    "reviewed_by": ("Người kiểm tra", "Reviewed by"),
    "approved_by": ("Người phê duyệt", "Approved by"),
}
#: Keys of the manifest that `manifest_sha256` does not cover (itself, and the report files).
UNHASHED = ("manifest_sha256", "report")


@dataclass(frozen=True, slots=True)
class Approval:
    """Who prepared, reviewed and approved the report ("" leaves a blank signature line)."""

    prepared_by: str = ""
    reviewed_by: str = ""
    approved_by: str = ""

    def rows(self) -> list[tuple[str, str, str]]:
        """(Vietnamese label, English label, name) per role, in signing order."""
        return [(vi, en, getattr(self, key)) for key, (vi, en) in APPROVAL_ROLES.items()]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One thing the manifest says that the files do not hold."""

    item: str  # what: `evidence:<record id>`, `findings`, `report.html`, `manifest`
    detail: str


def canonical(data: Any) -> bytes:
    """The canonical JSON bytes hashed everywhere: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def item_hash(record: EvidenceRecord) -> str:
    """SHA-256 of one evidence item: id, collector, host, address, command, time, return code,
    output and host-key fingerprint, as canonical JSON."""
    return sha256(canonical(asdict(record)))


def _rest(evidence: Evidence) -> dict[str, Any]:
    """What evidence.json holds beside its records (facts, documents, notes, time)."""
    return {k: v for k, v in evidence.to_dict().items() if k != "records"}


def core_hash(manifest: dict[str, Any]) -> str:
    """manifest_sha256: the canonical JSON of the manifest without UNHASHED keys."""
    return sha256(canonical({k: v for k, v in manifest.items() if k not in UNHASHED}))


def build(evidence: Evidence, findings: Path, *, version: str, inventory: str,
          approval: Approval, crosscheck: Path | None = None) -> dict[str, Any]:
    """The manifest of one run before its report exists (no `report` entry yet); with the
    run's crosscheck.json, its hash too."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "tool": "dcops",
        "tool_version": version,
        "inventory": inventory,
        "evidence": {
            "file": EVIDENCE_FILE,
            "sha256": evidence.digest(),
            "items": [{"id": r.id, "host": r.target, "sha256": item_hash(r)}
                      for r in evidence.records.values()],
            "other_sha256": sha256(canonical(_rest(evidence))),
        },
        "findings": {"file": findings.name, "sha256": sha256(findings.read_bytes())},
        "approval": asdict(approval),
    }
    if crosscheck is not None:
        manifest["crosscheck"] = {"file": crosscheck.name,
                                  "sha256": sha256(crosscheck.read_bytes())}
    manifest["manifest_sha256"] = core_hash(manifest)
    return manifest


def finish(manifest: dict[str, Any], html: Path) -> dict[str, Any]:
    """The manifest with the written report's hash added."""
    return {**manifest, "report": {"file": html.name, "sha256": sha256(html.read_bytes())}}


def dumps(manifest: dict[str, Any]) -> str:
    """manifest.json's text."""
    return strict_json(manifest, indent=2)


def check(manifest: dict[str, Any], folder: Path) -> list[Mismatch]:
    """Every difference between the manifest and the files in `folder` (empty: all hold)."""
    bad: list[Mismatch] = []
    if manifest.get("format") != FORMAT:
        return [Mismatch("manifest", f"format {manifest.get('format')!r}, expected {FORMAT}")]
    if core_hash(manifest) != manifest.get("manifest_sha256"):
        bad.append(Mismatch("manifest", "manifest_sha256 does not match its own content"))
    bad += _check_evidence(manifest["evidence"], folder)
    for key in ("findings", "report"):
        entry = manifest.get(key)
        if entry is None:
            bad.append(Mismatch(key, "no entry in the manifest"))
            continue
        path = folder / entry["file"]
        if not path.is_file():
            bad.append(Mismatch(entry["file"], f"missing ({path})"))
        elif sha256(path.read_bytes()) != entry["sha256"]:
            bad.append(Mismatch(entry["file"], "SHA-256 differs from the manifest's"))
    if "crosscheck" in manifest:  # optional: only runs with a cross-check have it
        entry = manifest["crosscheck"]
        path = folder / entry["file"]
        if not path.is_file():
            bad.append(Mismatch(entry["file"], f"missing ({path})"))
        elif sha256(path.read_bytes()) != entry["sha256"]:
            bad.append(Mismatch(entry["file"], "SHA-256 differs from the manifest's"))
    return bad


def _check_evidence(entry: dict[str, Any], folder: Path) -> list[Mismatch]:
    path = folder / entry["file"]
    if not path.is_file():
        return [Mismatch(entry["file"], f"missing ({path})")]
    try:
        evidence = Evidence.from_dict(strict_loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        return [Mismatch(entry["file"], f"not dcops evidence: {exc}")]
    bad: list[Mismatch] = []
    listed = {i["id"]: i["sha256"] for i in entry["items"]}
    for rid, record in evidence.records.items():
        if rid not in listed:
            bad.append(Mismatch(f"evidence:{rid}", "not in the manifest (added)"))
        elif item_hash(record) != listed[rid]:
            bad.append(Mismatch(f"evidence:{rid}", "SHA-256 differs from the manifest's "
                                "(command, output, host, time or host key changed)"))
    bad += [Mismatch(f"evidence:{rid}", "in the manifest, not in evidence.json (removed)")
            for rid in listed if rid not in evidence.records]
    if sha256(canonical(_rest(evidence))) != entry["other_sha256"]:
        bad.append(Mismatch("evidence:facts/documents/notes", "SHA-256 differs from the "
                            "manifest's"))
    if not bad and evidence.digest() != entry["sha256"]:
        bad.append(Mismatch(entry["file"], "overall SHA-256 differs from the manifest's"))
    return bad


def load(text: str | bytes, source: str) -> dict[str, Any]:
    """Parse a manifest; ComplianceError naming `source` when it is not one."""
    from dcops.errors import ComplianceError

    try:
        data = strict_loads(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ComplianceError(f"{source}: not a dcops manifest: {exc}") from exc
    if not isinstance(data, dict) or "evidence" not in data:
        raise ComplianceError(f"{source}: not a dcops manifest (expected {FORMAT})")
    return data
