"""Certificates seen on a host: the pki_cert role's files and the TLS endpoints' leaves."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
CRL = re.compile(r"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----", re.S)

Setter = Callable[[str, object, str], None]


def _days_left(cert: x509.Certificate, now: datetime) -> int:
    return (cert.not_valid_after_utc - now).days


def pki(out: str, put: Setter, now: datetime) -> None:
    """Host certificate, chain and CRL from /etc/ssl/dcops (pki_cert role)."""
    files = dict(re.findall(r"^== (\S+)\n(.*?)(?=^== |\Z)", out, re.S | re.M))
    host = next((v for k, v in files.items() if k.endswith("host.crt")), "")
    chain = next((v for k, v in files.items() if k.endswith("chain.pem")), "")
    if host:
        cert = x509.load_pem_x509_certificate(PEM.findall(host)[0].encode())
        put("pki.host_cert_days_left", _days_left(cert, now),
            f"subject={cert.subject.rfc4514_string()} notAfter={cert.not_valid_after_utc}")
        issuers = [x509.load_pem_x509_certificate(p.encode()) for p in PEM.findall(chain)]
        ok = False
        for issuer in issuers:
            try:
                cert.verify_directly_issued_by(issuer)
                ok = issuer.not_valid_after_utc > now
                break
            except (ValueError, TypeError, InvalidSignature):
                ok = False
        put("pki.chain_ok", ok, f"issuer={cert.issuer.rfc4514_string()}; "
            f"{len(issuers)} certificate(s) in chain.pem")
    crl_text = next((v for k, v in files.items() if k.endswith(".crl")), "")
    if crl_text:
        crls = CRL.findall(crl_text)
        if crls:
            crl = x509.load_pem_x509_crl(crls[0].encode())
        else:
            return
        nxt = crl.next_update_utc
        hours = round((nxt - now).total_seconds() / 3600, 1) if nxt else -1.0
        put("pki.crl_hours_left", hours, f"lastUpdate={crl.last_update_utc} nextUpdate={nxt}")


def tls(out: str, put: Setter, now: datetime) -> None:
    """Endpoints found on TLS ports: legacy protocols accepted, days until leaf expiry."""
    blocks = re.findall(r"^== port (\d+)\n(.*?)(?=^== port |\Z)", out, re.S | re.M)
    put("tls.endpoints", len(blocks), ", ".join(p for p, _ in blocks) or "no TLS listener")
    legacy, days, verified, untrusted = [], [], [], []
    for port, body in blocks:
        legacy += [f"{port}:{v}" for v in re.findall(r"^accepts (\S+)", body, re.M)]
        pems = PEM.findall(body)
        if pems:
            days.append(_days_left(x509.load_pem_x509_certificate(pems[0].encode()), now))
        verify = re.search(r"^Verify return code: (\d+) \((.*)\)", body, re.M)
        if verify:  # openssl s_client against the host's own trust store (/etc/ssl/certs)
            verified.append(f"{port}: {verify.group(1)} ({verify.group(2)})")
            if verify.group(1) != "0":
                untrusted.append(f"{port}: {verify.group(2)}")
    if blocks:
        put("tls.legacy_protocols", legacy, ", ".join(legacy) or "TLS 1.0/1.1 refused")
    if verified:
        put("tls.untrusted_chains", untrusted, "Verify return code per port: "
            + "; ".join(verified))
    if days:
        put("tls.min_days_left", min(days), f"leaf certificates expire in {days} days")
