"""Scanner results as dcops reads them: OpenSCAP (XCCDF 1.2 TestResult) and Wazuh SCA checks.

`run_oscap` evaluates the mapped SSG rules against a root directory with OSCAP_PROBE_ROOT (a lab
host's /proc/<pid>/root); `parse_xccdf` reads a results file produced anywhere (e.g. by oscap-ssh
on a real host); `wazuh_scan` turns the manager API's SCA checks into the same shape.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET  # our own oscap output; expat resolves no entities
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcops.compliance.crosscheck.mapping import Mapping
from dcops.compliance.crosscheck.ssg import SsgContent, file_sha256
from dcops.errors import ComplianceError

XCCDF = "{http://checklists.nist.gov/xccdf/1.2}"
#: SSG marks every rule of the profile "system_with_kernel"; lab hosts are containers without a
#: kernel package, so the lab copy of the data stream drops the gate (recorded in the evidence).
KERNEL_PLATFORM = '<xccdf-1.2:platform idref="#system_with_kernel"/>'
#: Wazuh SCA result words -> XCCDF-like results.
WAZUH_RESULTS = {"passed": "pass", "failed": "fail", "not applicable": "notapplicable",
                 "": "notchecked"}


@dataclass(frozen=True, slots=True)
class HostScan:
    """One scanner's results on one host: rule id -> result, the thresholds it used, how it ran."""

    scanner: str  # openscap | wazuh
    host: str
    results: dict[str, str]
    mode: str  # probe-root | native | imported | agent
    values: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def probe_root(self) -> bool:
        """True when oscap read the host's files from outside (OSCAP_PROBE_ROOT)."""
        return self.mode == "probe-root"


def parse_xccdf(path: Path, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """(rule -> result, value id -> value) of the TestResult in an XCCDF 1.2 results file;
    rule and value ids without `prefix` / the SSG value prefix."""
    try:
        tree = ET.parse(path)  # noqa: S314 - see the import
    except (OSError, ET.ParseError) as exc:
        raise ComplianceError(f"{path}: not an XCCDF results file: {exc}") from exc
    test = tree.getroot()
    if test.tag != f"{XCCDF}TestResult":
        test = next(test.iter(f"{XCCDF}TestResult"), None)  # type: ignore[arg-type]
    if test is None:
        raise ComplianceError(f"{path}: no XCCDF 1.2 TestResult; expected the file oscap "
                              "xccdf eval --results writes")
    value_prefix = prefix.replace("_rule_", "_value_")
    results: dict[str, str] = {}
    for rr in test.iter(f"{XCCDF}rule-result"):
        result = rr.find(f"{XCCDF}result")
        idref = rr.get("idref", "")
        if result is not None and idref:
            results[idref.removeprefix(prefix)] = (result.text or "").strip()
    values = {(sv.get("idref") or "").removeprefix(value_prefix): (sv.text or "").strip()
              for sv in test.iter(f"{XCCDF}set-value")}
    return results, values


def keep_test_result(source: Path, target: Path) -> None:
    """Write the TestResult element of `source` alone to `target`, without the profile's
    unselected rules (the evidence keeps what was evaluated, not the whole benchmark oscap
    copies into its results file)."""
    ET.register_namespace("", XCCDF.strip("{}"))
    root = ET.parse(source).getroot()  # noqa: S314 - see the import
    test = root if root.tag == f"{XCCDF}TestResult" else next(root.iter(f"{XCCDF}TestResult"))
    for rr in list(test.iter(f"{XCCDF}rule-result")):
        result = rr.find(f"{XCCDF}result")
        if result is not None and result.text == "notselected":
            test.remove(rr)
    ET.ElementTree(test).write(target, encoding="utf-8", xml_declaration=True)


def run_oscap(content: SsgContent, mapping: Mapping, host: str, root: Path, workdir: Path, *,
              container: bool = True, timeout: float = 600) -> HostScan:
    """Evaluate the mapped SSG rules on the tree under `root` (OSCAP_PROBE_ROOT); the results'
    TestResult lands in workdir/oscap-HOST.xml."""
    if shutil.which("oscap") is None:
        raise ComplianceError("oscap not found: install openscap-scanner (apt-get install "
                              "openscap-scanner)")
    workdir.mkdir(parents=True, exist_ok=True)
    datastream = content.datastream
    if container:  # beside the cached content, not in the output folder (10 MB)
        patched = datastream.with_name("ssg-debian12-ds.lab.xml")
        if not patched.exists() or patched.stat().st_mtime < datastream.stat().st_mtime:
            partial = patched.with_suffix(".partial")
            partial.write_text(datastream.read_text(encoding="utf-8").replace(
                KERNEL_PLATFORM, ""), encoding="utf-8")
            partial.replace(patched)
        datastream = patched
    full = workdir / f".oscap-{host}.full.xml"
    rules = [a for r in mapping.of("openscap") for a in ("--rule", mapping.openscap_prefix + r)]
    argv = ["oscap", "xccdf", "eval", "--profile", mapping.openscap_profile, *rules,
            "--results", str(full), str(datastream)]
    try:
        proc = subprocess.run(argv, env={**os.environ, "OSCAP_PROBE_ROOT": str(root)},
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ComplianceError(f"{host}: oscap ran over {timeout:.0f} s") from exc
    # oscap exits 2 when a rule fails: only 1 (or no results file) is an error
    if proc.returncode == 1 or not full.is_file():
        raise ComplianceError(f"{host}: oscap exited {proc.returncode}: "
                              f"{proc.stderr.strip()[-600:]}")
    kept = workdir / f"oscap-{host}.xml"
    keep_test_result(full, kept)
    full.unlink()
    results, values = parse_xccdf(kept, mapping.openscap_prefix)
    record = {"results_file": kept.name, "results_sha256": file_sha256(kept),
              "probe_root": str(root), "profile": mapping.openscap_profile,
              "kernel_platform_gate": "removed (container host)" if container else "kept"}
    return HostScan("openscap", host, results, "probe-root", values, record=record)


def imported_oscap(mapping: Mapping, host: str, path: Path) -> HostScan:
    """Results of oscap run elsewhere (on the host itself, e.g. `oscap-ssh`): native mode."""
    results, values = parse_xccdf(path, mapping.openscap_prefix)
    return HostScan("openscap", host, results, "imported", values,
                    record={"results_file": str(path), "results_sha256": file_sha256(path),
                            "profile": mapping.openscap_profile})


def wazuh_scan(host: str, agent: dict[str, Any], policy: dict[str, Any],
               checks: list[dict[str, Any]]) -> HostScan:
    """One agent's SCA checks of one policy, from GET /sca/{agent}/checks/{policy}."""
    results = {str(c.get("id")): WAZUH_RESULTS.get(str(c.get("result") or "").lower(),
                                                   str(c.get("result")))
               for c in checks}
    titles = {str(c.get("id")): str(c.get("title") or "") for c in checks}
    record = {"agent_id": str(agent.get("id")), "agent_name": str(agent.get("name")),
              "policy_id": str(policy.get("policy_id")), "policy_name": str(policy.get("name")),
              "scan_end": str(policy.get("end_scan") or ""),
              "policy_hash": str(policy.get("hash_file") or "")}
    return HostScan("wazuh", host, results, "agent", titles=titles, record=record)
