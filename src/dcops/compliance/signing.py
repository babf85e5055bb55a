"""PAdES signatures on report.pdf (pyHanko): sign with the province PKI's certificate, verify.

The signature is PAdES B-B (ETSI.CAdES.detached, no timestamp server, nothing fetched over the
network). The report's manifest.json is embedded in the PDF before signing, so the signature
covers it; `verify_pdf` reads it back only when the signature covers the whole file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from dcops.errors import ComplianceError

FIELD = "dcops-report-signature"
#: Key usages accepted on the signer's certificate: nonRepudiation (contentCommitment) is what a
#: document-signing certificate carries; digitalSignature alone (the pki_cert role's host
#: certificates) is accepted too.
SIGNER_KEY_USAGE = {"non_repudiation", "digital_signature"}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the verification table."""

    what_vi: str
    what_en: str
    ok: bool | None  # None: not checked (said why in detail)
    detail: str


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ComplianceError(f"{what} {path}: {exc.strerror or exc}; expected a readable "
                              f"PEM file") from exc


def _certs(path: Path, what: str) -> list[Any]:
    from pyhanko.keys import load_certs_from_pemder_data

    try:
        certs = list(load_certs_from_pemder_data(_read(path, what)))
    except ValueError as exc:
        raise ComplianceError(f"{what} {path}: not a PEM/DER certificate: {exc}") from exc
    if not certs:
        raise ComplianceError(f"{what} {path}: no certificate in it; expected PEM "
                              f"'-----BEGIN CERTIFICATE-----' blocks")
    return certs


def sign_pdf(pdf: Path, key: Path, cert: Path, chain: list[Path], *,
             passphrase: bytes | None = None, reason: str = "", location: str = "") -> None:
    """Sign `pdf` in place (an incremental update written beside, then renamed over it)."""
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    try:
        signing_key = load_private_key_from_pemder_data(_read(key, "--sign-key"), passphrase)
    except (ValueError, TypeError) as exc:
        raise ComplianceError(f"--sign-key {key}: cannot load the private key: {exc}") from exc
    signing_cert = _certs(cert, "--sign-cert")[0]
    if signing_cert.public_key.dump() != _public_der(signing_key.dump()):
        raise ComplianceError(f"--sign-key {key} does not belong to --sign-cert {cert} "
                              f"({signing_cert.subject.human_friendly})")
    extra = [c for path in chain for c in _certs(path, "--sign-chain")]
    # pyhanko-certvalidator 0.33 leaves SimpleCertificateStore.__init__ unannotated
    store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    for one in extra:  # the signer's own certificate is added by SimpleSigner
        store.register(one)
    signer = signers.SimpleSigner(signing_cert, signing_key, store)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
        reason=reason or None, location=location or None)
    data = _read(pdf, "report")
    out = BytesIO()
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
        if writer.prev.embedded_signatures:
            raise ComplianceError(f"{pdf}: already signed; expected an unsigned report.pdf "
                                  f"(write it again with `dcops audit run` to sign it anew)")
        signers.sign_pdf(writer, meta, signer=signer, output=out)
    except (PdfError, ValueError) as exc:
        raise ComplianceError(f"{pdf}: cannot sign: {exc}") from exc
    fd, tmp = tempfile.mkstemp(dir=pdf.parent, prefix=f".{pdf.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(out.getvalue())
    os.replace(tmp, pdf)


def _public_der(private_der: bytes) -> bytes:
    """SubjectPublicKeyInfo (DER) of a PKCS#8 private key."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_private_key,
    )

    key = load_der_private_key(private_der, None)
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def verify_pdf(data: bytes, ca: list[Path]) -> tuple[list[Check], bytes | None]:
    """Check the PDF's signature; return the checks and the embedded manifest (None when the
    signature does not hold or the manifest is absent: nothing unsigned is trusted)."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    roots = [c for path in ca for c in _certs(path, "--ca")]
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        sigs = reader.embedded_signatures
    except (PdfError, ValueError) as exc:
        return [Check("Tệp PDF", "PDF file", False, f"unreadable: {exc}")], None
    if not sigs:
        return [Check("Chữ ký số", "Signature", False, "the PDF carries no signature")], None
    sig = sigs[-1]
    context = ValidationContext(trust_roots=roots, allow_fetching=False,
                                revocation_mode="soft-fail")
    usage = KeyUsageConstraints(key_usage=SIGNER_KEY_USAGE, match_all_key_usages=False)
    try:
        status = validate_pdf_signature(sig, context, key_usage_settings=usage)
    except (SignatureValidationError, PdfError, ValueError) as exc:
        return [Check("Chữ ký số", "Signature", False, f"cannot be validated: {exc}")], None
    signer = _name(status.signing_cert)
    whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    when = status.signer_reported_dt
    stamp = f", signed {when:%Y-%m-%d %H:%M:%S %Z} (signer's clock)" if when else ""
    checks = [
        Check("Toàn vẹn chữ ký", "Signature intact", bool(status.intact and status.valid),
              f"{signer}; {status.md_algorithm}{stamp}" if status.intact and status.valid else
              "the signed bytes were changed after signing (digest or signature mismatch)"),
        Check("Phạm vi chữ ký", "Signature covers the whole file", whole,
              "entire file" if whole else f"{status.coverage.name if status.coverage else '?'}:"
              " bytes were added or changed outside the signed revision"),
    ]
    if roots:
        trusted = bool(status.trusted)
        checks.append(Check("Chuỗi chứng thư", "Certificate chains to --ca", trusted,
                            f"{signer} → " + ", ".join(_name(r) for r in roots)
                            if trusted else f"{signer} does not chain to the given CA "
                            f"({', '.join(p.name for p in ca)}) or its key usage is wrong"))
    else:
        checks.append(Check("Chuỗi chứng thư", "Certificate chains to a CA", None,
                            "not checked: give --ca CA.pem (the province root)"))
    if not all(c.ok is not False for c in checks):
        return checks, None
    return checks, embedded_file(reader, "manifest.json")


def _name(cert: Any) -> str:
    """A certificate's common name (its whole subject when it has none)."""
    return str(cert.subject.native.get("common_name") or cert.subject.human_friendly)


def _entry(dictionary: Any, key: str) -> Any:
    """dictionary[key] dereferenced (pyHanko's [] resolves indirect objects), or None."""
    if key not in dictionary:  # not .get(): it returns an unresolved IndirectObject
        return None
    return dictionary[key]


def embedded_file(reader: Any, name: str) -> bytes | None:
    """The bytes of the file attachment called `name` (the document's EmbeddedFiles)."""
    names = _entry(reader.root, "/Names")
    tree = _entry(names, "/EmbeddedFiles") if names is not None else None
    if tree is None:
        return None
    entries = list(_entry(tree, "/Names") or [])
    for kid in _entry(tree, "/Kids") or []:
        entries += list(_entry(kid.get_object(), "/Names") or [])
    for key, spec in zip(entries[::2], entries[1::2], strict=True):
        if str(key.get_object()) == name:
            data: bytes = spec.get_object()["/EF"]["/F"].data
            return data
    return None
