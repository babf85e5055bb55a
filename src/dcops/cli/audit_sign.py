"""CLI: `dcops audit sign|verify`: the PAdES signature on report.pdf and the evidence manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
REASON = "Báo cáo đánh giá ATTT theo cấp độ / Information security level assessment report"

# Files are checked by need_files (exit 2, one line) rather than click's exists=True, so that a
# command line naming files of another machine still parses (the README's are checked so).
SignKey = Annotated[Path | None, typer.Option(
    "--sign-key", help="PEM private key of the signing certificate (province PKI).")]
SignCert = Annotated[Path | None, typer.Option(
    "--sign-cert", help="PEM signing certificate (its key usage: nonRepudiation or "
    "digitalSignature).")]
SignChain = Annotated[list[Path] | None, typer.Option(
    "--sign-chain", help="PEM CA certificates to embed (issuing CA, root); repeatable.")]
SignPass = Annotated[Path | None, typer.Option(
    "--sign-passphrase-file", help="File holding the signing key's passphrase.")]
Person = Annotated[str, typer.Option(help="Name (and role) printed in the approval block.")]


def need_files(**options: Path | list[Path] | None) -> None:
    """BadParameter (exit 2) naming the first option whose file does not exist."""
    for name, value in options.items():
        for path in value if isinstance(value, list) else [value]:
            if path is not None and not path.is_file():
                flag = "REPORT" if name == "report" else f"--{name.replace('_', '-')}"
                raise typer.BadParameter(f"{path}: no such file (expected an existing file)",
                                         param_hint=flag)


def check_signing(key: Path | None, cert: Path | None, chain: list[Path] | None,
                  passphrase_file: Path | None) -> None:
    """Before any work: the key and certificate go together and every file exists."""
    if (key is None) != (cert is None):
        raise typer.BadParameter("--sign-key and --sign-cert go together",
                                 param_hint="--sign-key/--sign-cert")
    need_files(sign_key=key, sign_cert=cert, sign_chain=chain,
               sign_passphrase_file=passphrase_file)


def sign_report(pdf: Path, key: Path | None, cert: Path | None, chain: list[Path] | None,
                passphrase_file: Path | None) -> bool:
    """Sign `pdf` when a key and certificate are given; False when none was."""
    check_signing(key, cert, chain, passphrase_file)
    if key is None or cert is None:
        return False
    from dcops.compliance.signing import sign_pdf

    passphrase = (passphrase_file.read_bytes().rstrip(b"\r\n") if passphrase_file else None)
    sign_pdf(pdf, key, cert, list(chain or []), passphrase=passphrase, reason=REASON)
    console.print(f"[green]✓[/] ký số / signed (PAdES): {escape(str(pdf))}", highlight=False)
    return True


def sign(report: Annotated[Path, typer.Argument(help="report.pdf of `dcops audit run`.")],
         sign_key: SignKey = None, sign_cert: SignCert = None, sign_chain: SignChain = None,
         sign_passphrase_file: SignPass = None) -> None:
    """Sign a report PDF (PAdES B-B) with a certificate of the province PKI."""
    if sign_key is None or sign_cert is None:
        raise typer.BadParameter("both are required", param_hint="--sign-key/--sign-cert")
    need_files(report=report)
    sign_report(report, sign_key, sign_cert, sign_chain, sign_passphrase_file)


def _mark(ok: bool | None) -> str:
    return {True: "[green]ĐẠT / OK[/]", False: "[red]LỖI / FAIL[/]", None: "[yellow]—[/]"}[ok]


def _manifest_rows(pdf: Path, embedded: bytes | None) -> tuple[list[tuple[str, bool | None,
                                                                          str]], Any]:
    """Rows for the manifest itself, and the manifest to check the files against (or None)."""
    from dcops.compliance.manifest import MANIFEST_FILE, load
    from dcops.errors import ComplianceError

    beside = pdf.parent / MANIFEST_FILE
    rows: list[tuple[str, bool | None, str]] = []
    if embedded is None:
        rows.append(("Bảng kê trong PDF đã ký / Manifest in the signed PDF", False,
                     "absent, or the signature does not hold: nothing is trusted"))
        return rows, None
    manifest = load(embedded, f"{pdf} (embedded {MANIFEST_FILE})")
    rows.append(("Bảng kê trong PDF đã ký / Manifest in the signed PDF", True,
                 f"manifest_sha256 {manifest.get('manifest_sha256')}"))
    if beside.is_file():
        try:
            same = load(beside.read_bytes(), str(beside)) == manifest
        except ComplianceError:
            same = False
        rows.append((f"{MANIFEST_FILE} cạnh PDF / beside the PDF", same,
                     "same as the embedded one" if same else
                     "differs from the embedded (signed) manifest"))
    return rows, manifest


def verify(report: Annotated[Path, typer.Argument(help="report.pdf to verify.")],
           ca: Annotated[list[Path] | None, typer.Option(
               "--ca", help="PEM CA certificate(s) the signer must chain to (province root).")
           ] = None) -> None:
    """Check the PDF signature, the manifest, and every evidence item's hash (exit 1: a
    failure, each named on its own line)."""
    from dcops.compliance.manifest import check
    from dcops.compliance.signing import verify_pdf

    need_files(report=report, ca=ca)

    checks, embedded = verify_pdf(report.read_bytes(), list(ca or []))
    rows: list[tuple[str, bool | None, str]] = [(f"{c.what_vi} / {c.what_en}", c.ok, c.detail)
                                                for c in checks]
    more, manifest = _manifest_rows(report, embedded)
    rows += more
    failures = [(what, detail) for what, ok, detail in rows if ok is False]
    if manifest is not None:
        mismatches = check(manifest, report.parent)
        items = len(manifest["evidence"]["items"])
        rows.append((f"Bằng chứng / Evidence ({items} items), findings.json, report.html",
                     not mismatches, "every SHA-256 matches the manifest" if not mismatches
                     else f"{len(mismatches)} mismatch(es)"))
        failures += [(m.item, m.detail) for m in mismatches]
    table = Table(title=f"Kiểm tra báo cáo / Report verification: {escape(str(report))}")
    for col in ("Kiểm tra / Check", "Kết quả / Result", "Chi tiết / Detail"):
        table.add_column(col)
    for what, ok, detail in rows:
        table.add_row(escape(what), _mark(ok), escape(detail))
    console.print(table)
    for what, detail in failures:
        console.print(f"FAIL {escape(what)}: {escape(detail)}", highlight=False, soft_wrap=True)
    if failures:
        console.print(f"không đạt / not verified: {len(failures)} failure(s)", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(1)
    trust = ("" if ca else "; the signer was NOT checked against a CA (give --ca CA.pem) / "
             "chưa kiểm tra chuỗi chứng thư")
    console.print(f"đạt / verified: signature, manifest and evidence hashes hold{trust}",
                  highlight=False, soft_wrap=True)


def register(audit_app: typer.Typer) -> None:
    """Add `sign` and `verify` to the audit group."""
    audit_app.command("sign")(sign)
    audit_app.command("verify")(verify)
