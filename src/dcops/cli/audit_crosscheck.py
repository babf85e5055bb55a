"""CLI: `dcops audit crosscheck`: compare dcops' observations with OpenSCAP and Wazuh SCA.

Evidence is collected as `audit run` does (or read with --from-evidence), the scanners run, and
crosscheck.json (one row per host x scanner rule) lands in --out beside evidence.json; a later
`audit run --out` on the same folder (with --from-evidence OUT/evidence.json) puts the agreement
table in the report and the file's hash in the manifest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from dcops.cli.common import state_dir
from dcops.cli.compliance import (
    FromEvidence,
    Inventory,
    LabOpt,
    NoIac,
    OutOpt,
    SshConfigOpt,
    _assess,
    _lab_of,
    console,
)
from dcops.errors import ComplianceError, ConfigError

CROSSCHECK_FILE = "crosscheck.json"
Scanner = Literal["openscap", "wazuh", "all"]
HostsOpt = Annotated[list[str] | None, typer.Option(
    "--hosts", help="Hosts to cross-check (default: every host of the assessed systems).")]
ScannerOpt = Annotated[Scanner, typer.Option(
    "--scanner", help="openscap, wazuh or all (Wazuh only when a manager URL is given).")]
OscapResults = Annotated[list[str] | None, typer.Option(
    "--oscap-results", help="HOST=FILE: XCCDF results of oscap run on a real host (oscap-ssh), "
                            "instead of running oscap here (lab hosts only).")]
WazuhUrl = Annotated[str | None, typer.Option(
    "--wazuh-url", envvar="DCOPS_WAZUH_URL", help="Wazuh manager API, e.g. https://wazuh:55000.")]
WazuhUser = Annotated[str, typer.Option("--wazuh-user", envvar="DCOPS_WAZUH_USER")]
WazuhPw = Annotated[Path | None, typer.Option(
    "--wazuh-password-file", envvar="DCOPS_WAZUH_PASSWORD_FILE", help="File holding the password.")]
WazuhCa = Annotated[Path | None, typer.Option(
    "--wazuh-ca-file", help="CA of the manager's certificate (verification stays on).")]
SsgCache = Annotated[Path | None, typer.Option(
    "--ssg-cache", help="Where trixie's ssg-debian is kept (default STATE/cache/ssg).")]


def _imported(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        host, sep, file = item.partition("=")
        if not sep or not host or not file:
            raise typer.BadParameter(f"{item!r}: expected HOST=FILE", param_hint="--oscap-results")
        path = Path(file)
        if not path.is_file():
            raise typer.BadParameter(f"{item!r}: no such file {path}",
                                     param_hint="--oscap-results")
        out[host] = path
    return out


def _oscap_scans(mapping: Any, hosts: list[str], lab: str | None, imported: dict[str, Path],
                 out: Path, cache: Path) -> tuple[list[Any], dict[str, Any]]:
    from dcops.compliance.crosscheck.scan import imported_oscap, run_oscap
    from dcops.compliance.crosscheck.ssg import fetch_ssg

    unreachable = [h for h in hosts if h not in imported and not lab]
    if unreachable:
        raise ComplianceError(
            f"oscap on {', '.join(unreachable)}: dcops runs oscap itself only on lab hosts "
            "(through the host's root with OSCAP_PROBE_ROOT); on a real host run `oscap-ssh "
            f"USER@HOST 22 xccdf eval --profile {mapping.openscap_profile} --results FILE "
            "ssg-debian12-ds.xml` and give --oscap-results HOST=FILE, or use --scanner wazuh")
    scans: list[Any] = []
    record: dict[str, Any] = {"profile": mapping.openscap_profile}
    running = [h for h in hosts if h not in imported]
    if running:
        from dcops.cli.common import configure_lab
        from dcops.lab.access import LabAccess

        configure_lab()
        if os.geteuid() != 0:
            raise ComplianceError("oscap reads lab hosts through /proc/PID/root: run as root")
        content = fetch_ssg(cache)
        record["content"] = content.record()
        access = LabAccess(str(lab))
        for host in running:
            with console.status(f"oscap: {host}…"):
                root = Path(f"/proc/{access.host_pid(host)}/root")
                scans.append(run_oscap(content, mapping, host, root, out))
            console.print(f"[green]✓[/] oscap {host}", highlight=False)
    scans += [imported_oscap(mapping, h, p) for h, p in imported.items() if h in hosts]
    return scans, record


def _wazuh_scans(mapping: Any, hosts: list[str], url: str, user: str, password_file: Path | None,
                 ca_file: Path | None) -> tuple[list[Any], dict[str, Any], list[str]]:
    from dcops.collectors.wazuh import WazuhClient
    from dcops.compliance.crosscheck.scan import wazuh_scan

    if password_file is None:
        raise typer.BadParameter("a Wazuh URL needs --wazuh-password-file",
                                 param_hint="--wazuh-password-file")
    try:
        password = password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"--wazuh-password-file {password_file}: {exc.strerror}") from exc
    scans, notes = [], []
    with WazuhClient(url, user, password, verify=str(ca_file) if ca_file else True) as client:
        agents = {str(a.get("name")): a for a in client.agents()}
        for host in hosts:
            agent = agents.get(host)
            if agent is None:
                notes.append(f"wazuh: no agent named {host} on {url}")
                continue
            policies = {str(p.get("policy_id")): p
                        for p in client.sca_policies(str(agent.get("id")))}
            policy = policies.get(mapping.wazuh_policy)
            if policy is None:
                notes.append(f"wazuh: agent {host} has no {mapping.wazuh_policy} SCA result "
                             f"(has: {', '.join(sorted(policies)) or 'none'})")
                continue
            checks = client.sca_checks(str(agent.get("id")), mapping.wazuh_policy)
            scans.append(wazuh_scan(host, agent, policy, checks))
    return scans, {"url": url, "policy": mapping.wazuh_policy}, notes


def _keep_finished_report(out: Path, from_evidence: Path | None) -> None:
    """Refuse to replace the evidence.json a finished report in `out` hashes (manifest.json)."""
    kept = out / "evidence.json"
    if (out / "manifest.json").is_file() and kept.is_file() and not (
            from_evidence and from_evidence.resolve() == kept.resolve()):
        raise typer.BadParameter(
            f"{out} holds a finished report whose manifest hashes its evidence.json; "
            f"cross-check that evidence with --from-evidence {kept}, or choose another --out",
            param_hint="--out")


def crosscheck(inventory: Inventory, out: OutOpt, lab: LabOpt = None, hosts: HostsOpt = None,
               scanner: ScannerOpt = "all", from_evidence: FromEvidence = None,
               ssh_config: SshConfigOpt = None, no_iac: NoIac = False,
               oscap_results: OscapResults = None, wazuh_url: WazuhUrl = None,
               wazuh_user: WazuhUser = "wazuh", wazuh_password_file: WazuhPw = None,
               wazuh_ca_file: WazuhCa = None, ssg_cache: SsgCache = None) -> None:
    """Cross-check with OpenSCAP (SSG Debian 12) and Wazuh SCA: crosscheck.json with agree /
    disagree (why) / scanner blind spot / not comparable per host and rule."""
    from dcops.compliance import load_catalogue
    from dcops.compliance.crosscheck.compare import (
        VERDICT_LABELS,
        VERDICTS,
        compare,
        document,
        observations,
    )
    from dcops.compliance.crosscheck.mapping import MAPPING_FILE, load_mapping
    from dcops.compliance.crosscheck.ssg import file_sha256
    from dcops.compliance.evidence import strict_json, utcnow
    from dcops.compliance.manifest import sha256

    imported = _imported(oscap_results or [])
    if scanner == "wazuh" and not wazuh_url:
        raise typer.BadParameter("--scanner wazuh needs --wazuh-url (or DCOPS_WAZUH_URL)",
                                 param_hint="--wazuh-url")
    _keep_finished_report(out, from_evidence)
    mapping = load_mapping(load_catalogue())
    reports, model, evidence = _assess(inventory, None, None, None, ssh_config=ssh_config,
                                       lab=lab, registry=None, no_ssh=False, no_iac=no_iac,
                                       from_evidence=from_evidence, out=out)
    assessed = sorted({h for r in reports for h in r.hosts})
    chosen = hosts or assessed
    unknown = [h for h in chosen if h not in model.hosts]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: not in the inventory (hosts: "
                                 f"{', '.join(assessed[:8])}{'…' if len(assessed) > 8 else ''})",
                                 param_hint="--hosts")
    stray = sorted(set(imported) - set(chosen))
    if stray:
        raise typer.BadParameter(f"{', '.join(stray)}: not a cross-checked host",
                                 param_hint="--oscap-results")
    if scanner in ("openscap", "all") and lab is None and not imported:
        from dcops.inventory.ansible_io import read

        lab = _lab_of(inventory, read(inventory).hostvars)
    scans: list[Any] = []
    records: dict[str, Any] = {}
    notes: list[str] = []
    if scanner in ("openscap", "all"):
        found, records["openscap"] = _oscap_scans(mapping, chosen, lab, imported, out,
                                                  ssg_cache or state_dir() / "cache" / "ssg")
        scans += found
    if scanner in ("wazuh", "all") and wazuh_url:
        found, records["wazuh"], more = _wazuh_scans(mapping, chosen, wazuh_url, wazuh_user,
                                                     wazuh_password_file, wazuh_ca_file)
        scans += found
        notes += more
    elif scanner == "all":
        notes.append("wazuh: no manager URL given (--wazuh-url / DCOPS_WAZUH_URL): not compared")
    rows = compare(mapping, scans, observations(reports))
    doc = document(rows, scans, inventory=str(inventory), evidence_sha256=evidence.digest(),
                   mapping=mapping, mapping_sha256=file_sha256(MAPPING_FILE),
                   created=utcnow().isoformat(), scanners=records, notes=notes)
    path = out / CROSSCHECK_FILE
    path.write_text(strict_json(doc, indent=1), encoding="utf-8")
    table = Table(title="Đối chiếu với công cụ khác / Cross-check with other scanners")
    table.add_column("Scanner")
    for v in VERDICTS:
        table.add_column(f"{VERDICT_LABELS[v][0]}\n{VERDICT_LABELS[v][1]}")
    for name, counts in doc["summary"].items():
        table.add_row(name, *(str(counts[v]) if v != "disagree" else
                              f"{counts[v]} ({counts['explained']} explained)"
                              for v in VERDICTS))
    console.print(table)
    for row in rows:
        if row.verdict in ("scanner_blind_spot", "disagree"):
            console.print(f"  {row.host} {row.scanner} {row.rule} ({row.control}): "
                          f"{row.verdict}: {row.reason}", highlight=False, soft_wrap=True)
    for note in notes:
        console.print(f"  note: {note}", highlight=False)
    console.print(f"crosscheck: {path} (sha256 {sha256(path.read_bytes())[:16]}…)")


def register(app: typer.Typer) -> None:
    """Add `audit crosscheck`."""
    app.command("crosscheck")(crosscheck)
