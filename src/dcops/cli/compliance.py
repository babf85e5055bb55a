"""CLI: `dcops audit run|annual|catalogue`: collect evidence, assess systems, write reports.

`dcops audit sign|verify` (the report's signature and manifest) live in cli/audit_sign.py."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dcops.cli.audit_sign import (
    Person,
    SignCert,
    SignChain,
    SignKey,
    SignPass,
    check_signing,
    sign_report,
)
from dcops.cli.choices import Regime
from dcops.cli.common import state_dir, vault_password_file
from dcops.cli.failures import EXIT_PARTIAL
from dcops.errors import ComplianceError, LabError

console = Console()
#: How compliance.collect.ssh notes a host it could not reach.
SSH_FAILED = re.compile(r"^(?P<host>\S+): SSH failed \((?P<where>[^)]*)\): (?P<why>.*)$", re.S)
audit_app = typer.Typer(help="Compliance: evidence, assessment and reports (TT12/ND331).",
                        no_args_is_help=True)

Inventory = Annotated[Path, typer.Option("-i", "--inventory", help="Inventory directory.")]
SystemOpt = Annotated[list[str] | None, typer.Option("--system", help="System(s); default all.")]
RegimeOpt = Annotated[Regime | None, typer.Option("--regime", help="tt12 or nd331.")]
ProfileOpt = Annotated[Path | None, typer.Option("--profile", help="Auditor profile YAML.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory.")]
SshConfigOpt = Annotated[Path | None, typer.Option(
    "--ssh-config", help="ssh_config for host connections (default: inventory variables).")]
LabOpt = Annotated[str | None, typer.Option(
    "--lab", help="Reach hosts through the running lab NAME (its ssh_config).")]
RegistryOpt = Annotated[Path | None, typer.Option(
    "--evidence-registry", help="Manual evidence YAML (INVENTORY/compliance/evidence.yml).")]
NoSsh = Annotated[bool, typer.Option("--no-ssh", help="Skip host probes over SSH.")]
NoIac = Annotated[bool, typer.Option("--no-iac", help="Skip planning the IaC model.")]
NoPdf = Annotated[bool, typer.Option("--no-pdf", help="Write HTML and JSON only.")]
SSH_CONCURRENCY = 32  # = collect.ssh.DEFAULT_CONCURRENCY (not imported: it loads Fabric)
SshConcurrency = Annotated[int, typer.Option(
    "--ssh-concurrency", min=1, max=1024,
    help="SSH sessions at once (hosts beyond it wait for a free slot).")]
FromEvidence = Annotated[Path | None, typer.Option(
    "--from-evidence", help="Assess recorded evidence.json instead of collecting.")]
CrosscheckOpt = Annotated[Path | None, typer.Option(
    "--crosscheck", help="crosscheck.json of `audit crosscheck` to add to the report "
                         "(default: OUT/crosscheck.json when present).")]


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StoreSoc:
    """SocEvidenceSource over the alert store (SQLAlchemy) and the event spool (SQLite)."""

    def __init__(self, db_url: str, spool: Path) -> None:
        self.db_url = db_url
        self.spool = spool
        self.description = f"{db_url} + {spool}"

    def last_events(self) -> dict[str, datetime]:
        """Newest event time per host.name in the spool (last 30 days)."""
        from dcops.pipeline.reader import SpoolReader

        out: dict[str, datetime] = {}
        for event in SpoolReader(self.spool).since(datetime.now(UTC) - timedelta(days=30)):
            host = str(event.fields.get("host.name") or "")
            ts = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(
                tzinfo=UTC)
            if host and (host not in out or ts > out[host]):
                out[host] = ts
        return out

    def alert_timings(self, since: datetime) -> list[Any]:
        """Created/acked/resolved times of alerts since `since`."""
        from dcops.alerts.models import AlertFilter
        from dcops.alerts.store import AlertStore
        from dcops.compliance.collect.soc import AlertTiming

        store = AlertStore(self.db_url)
        try:
            alerts = store.query(AlertFilter(since=since.isoformat(), limit=100000))
        finally:
            store.close()
        return [AlertTiming(c, _time(a.acked_at), _time(a.resolved_at))
                for a in alerts if (c := _time(a.created_at)) is not None]

    def incidents(self, since: datetime) -> list[Any]:
        """Serious incidents since `since` with report times read from the audit trail."""
        from dcops.alerts.models import AlertFilter
        from dcops.alerts.store import AlertStore
        from dcops.compliance.collect.incidents import incident_reports

        store = AlertStore(self.db_url)
        try:
            incidents = store.incidents()
            alerts = [a for inc in incidents
                      for a in store.query(AlertFilter(incident_id=inc.id, limit=100000))]
            trail = store.audit_records()
        finally:
            store.close()
        return incident_reports(incidents, alerts, trail, since)


def _soc_source() -> StoreSoc | None:
    url = os.environ.get("DCOPS_DB_URL") or ""
    db = state_dir() / "alerts.db"
    if not url and not db.exists():
        return None
    try:
        import dcops.alerts.store  # noqa: F401 - probe that the store is installed
    except ImportError:
        return None
    return StoreSoc(url or f"sqlite:///{db}", state_dir() / "spool.db")


def _collect(inventory: Path, model: Any, *, ssh_config: Path | None, lab: str | None,
             registry: Path, no_ssh: bool, no_iac: bool,
             ssh_concurrency: int = SSH_CONCURRENCY) -> Any:
    from rich.progress import Progress

    from dcops.compliance.collect.backup import BackupCollector, Repository
    from dcops.compliance.collect.iac import IacCollector
    from dcops.compliance.collect.manual import ManualCollector
    from dcops.compliance.collect.site import SiteCollector
    from dcops.compliance.collect.soc import SocCollector
    from dcops.compliance.collect.ssh import (
        SshCollector,
        targets_from_hostvars,
        targets_from_ssh_config,
    )
    from dcops.compliance.evidence import Evidence
    from dcops.inventory.ansible_io import read

    evidence = Evidence()
    collectors: list[Any] = [SiteCollector(str(inventory)), ManualCollector(registry)]
    if not no_iac:
        collectors.append(IacCollector(cache_dir=state_dir() / "cache" / "iac"))
    repos = _registry_repositories(registry)
    collectors.append(BackupCollector([Repository(**r) for r in repos],
                                      state_dir() / "evidence" / "dr_drill"))
    collectors.append(SocCollector(_soc_source()))
    for collector in collectors:
        _phase(collector.name, partial(collector.collect, model, evidence), evidence)
    if not no_ssh and model.hosts:
        hostvars = {} if (ssh_config or lab) else read(inventory).hostvars
        lab = lab or _lab_of(inventory, hostvars)
        if lab:
            ssh_config = _lab_ssh_config(lab)
        targets = (targets_from_ssh_config(model, ssh_config) if ssh_config
                   else targets_from_hostvars(model, hostvars))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("ssh: bằng chứng máy chủ / host evidence",
                                     total=len(targets))

            def advance(host: str, ok: bool, seconds: float, error: str) -> None:
                mark = "[green]✓[/]" if ok else "[red]✗[/]"
                detail = f"{seconds:.1f} s" if ok else f"{seconds:.1f} s, {escape(error)}"
                progress.console.print(f"  {mark} ssh {escape(host)} ({detail})",
                                       highlight=False)
                progress.advance(task)

            ssh = SshCollector(targets, progress=advance, concurrency=ssh_concurrency)
            _phase("ssh", partial(ssh.collect, model, evidence), evidence)
    return evidence


def _phase(name: str, work: Callable[[], None], evidence: Any) -> None:
    """One evidence phase under a spinner, then its line: name, records gathered, seconds."""
    before = len(evidence.records)
    start = time.monotonic()
    with console.status(f"{name}: thu thập bằng chứng / collecting evidence…"):
        work()
    console.print(f"[green]✓[/] {name}: {len(evidence.records) - before} bản ghi / records "
                  f"({time.monotonic() - start:.1f} s)", highlight=False)


def _running_labs() -> list[str]:
    return sorted(p.parent.name for p in (state_dir() / "lab").glob("*/ssh_config"))


def _lab_ssh_config(lab: str) -> Path:
    """The ssh_config of the running lab `lab`; LabError naming the running ones otherwise."""
    path = state_dir() / "lab" / lab / "ssh_config"
    if not path.is_file():
        raise LabError(f"--lab {lab}: no running lab of that name ({path} is missing); expected "
                       f"one of the running labs ({', '.join(_running_labs()) or 'none'}) or "
                       f"start it with `dcops lab up --name {lab}`")
    return path


def _lab_of(inventory: Path, hostvars: dict[str, dict[str, Any]]) -> str | None:
    """The lab a lab inventory reaches its hosts through (dcops_lab_name), when it is running."""
    names = sorted({str(hv["dcops_lab_name"]) for hv in hostvars.values()
                    if hv.get("dcops_lab_name")})
    if not names:
        return None
    if not (state_dir() / "lab" / names[0] / "ssh_config").is_file():
        raise LabError(f"{inventory}: a lab inventory (dcops_lab_name: {names[0]}) but lab "
                       f"{names[0]} is not running; expected --lab NAME for a running lab "
                       f"({', '.join(_running_labs()) or 'none running'}: `dcops lab up`), "
                       f"or --no-ssh")
    return names[0]


def _unreachable(reports: list[Any]) -> list[tuple[str, str, str]]:
    """(host, address, error) of every host the SSH collector noted as failed."""
    notes = reports[0].notes if reports else []
    return [(m["host"], m["where"], m["why"]) for n in notes
            if (m := SSH_FAILED.match(n)) is not None]


def _registry_repositories(registry: Path) -> list[dict[str, str]]:
    import yaml

    if not registry.exists():
        return []
    from dcops.compliance.collect.manual import registry_body

    data = registry_body(yaml.safe_load(registry.read_text(encoding="utf-8")) or {})
    return [{k: str(v) for k, v in r.items() if k in ("host", "repository", "password_file")}
            for r in data.get("backups") or []]


def _assess(inventory: Path, systems: list[str] | None, regime: str | None,
            profile_path: Path | None, *, ssh_config: Path | None, lab: str | None,
            registry: Path | None, no_ssh: bool, no_iac: bool, from_evidence: Path | None,
            out: Path, ssh_concurrency: int = SSH_CONCURRENCY) -> tuple[list[Any], Any, Any]:
    from dcops.compliance import Assessor, Evidence, Profile, load_catalogue, load_profile
    from dcops.compliance.evidence import strict_json, strict_loads, utcnow
    from dcops.compliance.notes import coverage, load_notes
    from dcops.inventory import load_inventory

    model = load_inventory(inventory, vault_password_file())
    catalogue = load_catalogue()
    profile = load_profile(profile_path, catalogue) if profile_path else Profile()
    # the auditor's notes are read before minutes of evidence collection: a bad one fails at once
    notes_path = inventory / "compliance" / "notes.yml"
    notes = (tuple(load_notes(notes_path, catalogue, model.systems)) if notes_path.is_file()
             else ())
    chosen = regime or profile.regime or "tt12"
    if chosen not in ("tt12", "nd331"):
        raise ComplianceError(f"--regime {chosen}: expected tt12 or nd331")
    if from_evidence:
        try:
            evidence = Evidence.from_dict(strict_loads(from_evidence.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ComplianceError(f"--from-evidence {from_evidence}: {exc.strerror}; expected "
                                  f"the evidence.json of an earlier `audit run`") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ComplianceError(f"{from_evidence}: not recorded dcops evidence: {exc}") from exc
    else:
        evidence = _collect(inventory, model, ssh_config=ssh_config, lab=lab,
                            registry=registry or inventory / "compliance" / "evidence.yml",
                            no_ssh=no_ssh, no_iac=no_iac, ssh_concurrency=ssh_concurrency)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "evidence.json"
    if not (from_evidence and target.exists() and from_evidence.resolve() == target.resolve()):
        # re-reading OUT/evidence.json leaves its bytes alone: a manifest may hash them
        target.write_text(strict_json(evidence.to_dict(), indent=1), encoding="utf-8")
    assessor = Assessor(model, catalogue, evidence, profile, chosen, utcnow(), notes)
    names = systems or sorted(model.systems)
    start = time.monotonic()
    with console.status("assess: đánh giá / assessing…"):
        reports = [assessor.assess(n) for n in names]
    console.print(f"[green]✓[/] assess: {len(reports)} hệ thống / systems, {chosen} "
                  f"({time.monotonic() - start:.1f} s)", highlight=False)
    for report in reports if notes else []:
        cover = coverage(report)
        for what, items in (("chưa có giải trình / no auditor's note", cover.unexplained),
                            ("giải trình cho yêu cầu không còn chưa đạt / note on a control "
                             "not failing", cover.stale)):
            if items:
                console.print(f"[yellow]![/] {report.system}: {what} ({notes_path}): "
                              f"{', '.join(items)}", highlight=False)
    return reports, model, evidence


def _print_summary(reports: list[Any]) -> None:
    table = Table(title="Kết quả / Results")
    for col in ("System", "Level", "Met", "Partly", "Not met", "N/A", "Manual"):
        table.add_column(col)
    for r in reports:
        c = r.counts()
        table.add_row(r.system, str(r.level), str(c["met"]), str(c["partly_met"]),
                      str(c["not_met"]), str(c["not_applicable"]), str(c["manual"]))
    console.print(table)


@audit_app.command("run")
def run(inventory: Inventory, out: OutOpt, system: SystemOpt = None, regime: RegimeOpt = None,
        profile: ProfileOpt = None, ssh_config: SshConfigOpt = None, lab: LabOpt = None,
        evidence_registry: RegistryOpt = None, no_ssh: NoSsh = False, no_iac: NoIac = False,
        no_pdf: NoPdf = False, from_evidence: FromEvidence = None, prepared_by: Person = "",
        reviewed_by: Person = "", approved_by: Person = "", sign_key: SignKey = None,
        sign_cert: SignCert = None, sign_chain: SignChain = None,
        sign_passphrase_file: SignPass = None,
        ssh_concurrency: SshConcurrency = SSH_CONCURRENCY,
        crosscheck: CrosscheckOpt = None) -> None:
    """Assess systems at their level; write findings.json, report.html, report.pdf and
    manifest.json (SHA-256 of every evidence item); sign the PDF with --sign-key/--sign-cert.
    With crosscheck.json in --out (`audit crosscheck`), the report gets its agreement table."""
    from dcops import __version__
    from dcops.compliance.manifest import Approval
    from dcops.compliance.report import write_reports

    if no_pdf and (sign_key or sign_cert):
        raise typer.BadParameter("there is no PDF to sign with --no-pdf", param_hint="--sign-key")
    check_signing(sign_key, sign_cert, sign_chain, sign_passphrase_file)
    if crosscheck is not None and not crosscheck.is_file():
        raise typer.BadParameter(f"no such file {crosscheck}; expected the crosscheck.json "
                                 "of `dcops audit crosscheck`", param_hint="--crosscheck")
    if crosscheck is not None and crosscheck.parent.resolve() != out.resolve():
        import shutil

        out.mkdir(parents=True, exist_ok=True)  # the manifest names files beside the report
        crosscheck = Path(shutil.copyfile(crosscheck, out / "crosscheck.json"))
    if crosscheck is None and (out / "crosscheck.json").is_file():
        crosscheck = out / "crosscheck.json"
    reports, _, evidence = _assess(inventory, system, regime, profile, ssh_config=ssh_config,
                                   lab=lab, registry=evidence_registry, no_ssh=no_ssh,
                                   no_iac=no_iac, from_evidence=from_evidence, out=out,
                                   ssh_concurrency=ssh_concurrency)
    paths = write_reports(reports, out, inventory=str(inventory), version=__version__,
                          pdf=not no_pdf, evidence=evidence,
                          approval=Approval(prepared_by, reviewed_by, approved_by),
                          crosscheck=crosscheck)
    if "pdf" in paths and not sign_report(paths["pdf"], sign_key, sign_cert, sign_chain,
                                          sign_passphrase_file):
        console.print("report.pdf is not signed / chưa ký số: `dcops audit sign "
                      f"{paths['pdf']} --sign-key KEY.pem --sign-cert CERT.pem`",
                      highlight=False, soft_wrap=True)
    _print_summary(reports)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")
    failed = _unreachable(reports)
    if failed:
        table = Table(title="Không kết nối được / Unreachable hosts")
        for col in ("Host", "Address", "Error"):
            table.add_column(col)
        for row in failed:
            table.add_row(*row)
        console.print(table)
        console.print(f"partial / một phần: {len(failed)} host(s) unreachable; their controls "
                      f"have no SSH evidence (exit {EXIT_PARTIAL})", highlight=False)
        raise typer.Exit(EXIT_PARTIAL)


@audit_app.command("annual")
def annual(inventory: Inventory, out: OutOpt, system: SystemOpt = None,
           regime: RegimeOpt = None, profile: ProfileOpt = None,
           ssh_config: SshConfigOpt = None, lab: LabOpt = None,
           evidence_registry: RegistryOpt = None, no_ssh: NoSsh = False,
           no_iac: NoIac = False, from_evidence: FromEvidence = None,
           no_pdf: NoPdf = False, ssh_concurrency: SshConcurrency = SSH_CONCURRENCY) -> None:
    """Circular 12 annual report (period 15/12 to 14/12): CSV, XLSX, HTML, PDF and a table."""
    from dcops.compliance.annual import GAP, TT12_STATUS, annual_rows, write_annual

    reports, _, _ = _assess(inventory, system, regime, profile, ssh_config=ssh_config, lab=lab,
                            registry=evidence_registry, no_ssh=no_ssh, no_iac=no_iac,
                            from_evidence=from_evidence, out=out,
                            ssh_concurrency=ssh_concurrency)
    rows = annual_rows(reports)
    period = f"{reports[0].period_start} to {reports[0].period_end}" if reports else ""
    paths = write_annual(rows, period, out, pdf=not no_pdf)
    table = Table(title=f"Báo cáo năm / Annual report {period}")
    for col in ("System", "Control", "Yêu cầu / Requirement", "Tình trạng (TT12) / Status",
                "Chưa có bằng chứng / No evidence yet"):
        table.add_column(col)
    for row in rows:
        vi, en = TT12_STATUS[row.status]
        table.add_row(row.system, row.control, f"{row.requirement_vi}\n{row.requirement_en}",
                      f"{vi} / {en}", GAP[row.evidence_gap])
    console.print(table)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")


@audit_app.command("catalogue")
def catalogue(level: Annotated[int | None, typer.Option("--level")] = None,
              regime: Annotated[Regime, typer.Option("--regime")] = "tt12",
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the controls (id, names, levels, evidence kind, references)."""
    from dcops.compliance import load_catalogue
    from dcops.compliance.catalogue import CITATION_STATUS, format_citation

    controls = [c for c in load_catalogue().values() if level is None or level in c.levels]
    if as_json:
        console.print_json(json.dumps([{"id": c.id, "group": c.group, "name_vi": c.name_vi,
                                        "name_en": c.name_en, "levels": list(c.levels),
                                        "evidence": c.evidence, "refs": c.refs}
                                       for c in controls], ensure_ascii=False))
        return
    table = Table(title=f"Danh mục kiểm soát / Control catalogue ({len(controls)})")
    for col in ("ID", "Tên / Name", "Levels", "Evidence", regime, "ISO 27001"):
        table.add_column(col)
    for c in controls:
        # Text, not markup: "[đã kiểm chứng / verified]" would be read as a Rich style tag.
        table.add_row(c.id, Text(f"{c.name_vi}\n{c.name_en}"), ",".join(map(str, c.levels)),
                      c.evidence,
                      Text("\n".join(format_citation(x) for x in c.refs.get(regime) or [])),
                      Text("\n".join(f"{x['clause']} [{' / '.join(CITATION_STATUS[x['status']])}]"
                                     for x in c.refs.get("iso27001") or [])))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the audit commands to the root application."""
    from dcops.cli import audit_crosscheck, audit_sign

    audit_sign.register(audit_app)
    audit_crosscheck.register(audit_app)
    app.add_typer(audit_app, name="audit")
