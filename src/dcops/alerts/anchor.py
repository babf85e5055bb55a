"""Anchors: the chain head (seq, hash, time) signed with a PKI key and kept outside the database.

Each anchor is one JSON line appended to the anchor file and sent to syslog (tag
``dcops-trail-anchor``), so a copy collected by a syslog server can be verified the same way. The
signing key is Ed25519 or ECDSA (the pki_cert role issues ECDSA P-256); verification uses the
certificates the verifier is given, never a key carried by the anchor itself.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import logging.handlers
import os
import socket
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dcops.errors import ConfigError

KIND = "dcops.trail.anchor"
TAG = "dcops-trail-anchor"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A signed statement: the trail had record `seq` with hash `hash` at `time`."""

    seq: int
    hash: str
    key_id: str
    time: str
    store: str
    cert_sha256: str
    alg: str
    sig: str = ""
    where: str = ""  # file:line it was read from (not signed)

    def payload(self) -> bytes:
        """The exact bytes the signature covers."""
        doc = {k: v for k, v in asdict(self).items() if k not in ("sig", "where")}
        doc["kind"] = KIND
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        """The JSON line written to the anchor file and to syslog."""
        doc = {k: v for k, v in asdict(self).items() if k != "where"}
        return json.dumps({"kind": KIND, **doc}, sort_keys=True, separators=(",", ":"))


def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate (DER), hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the anchor certificate (PEM expected): {exc}",
                          file=str(path)) from exc


def load_certs(paths: list[Path]) -> list[x509.Certificate]:
    """Every certificate in these PEM files (bundles allowed)."""
    out: list[x509.Certificate] = []
    for p in paths:
        try:
            out += x509.load_pem_x509_certificates(p.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read certificates (PEM expected): {exc}",
                              file=str(p)) from exc
    return out


class AnchorSigner:
    """Signs heads with a PKI key and writes the anchors to a file and to syslog."""

    def __init__(self, key_path: Path, cert_path: Path, anchor_file: Path, syslog: str = "",
                 store: str = "") -> None:
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the anchor signing key (unencrypted PEM expected): "
                              f"{exc}", file=str(key_path)) from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigError("the anchor signing key must be Ed25519 or ECDSA",
                              file=str(key_path))
        self.key = key
        self.cert = _load_cert(cert_path)
        mine = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        theirs = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if mine != theirs:
            raise ConfigError(f"the certificate does not belong to the key {key_path}",
                              file=str(cert_path))
        self.alg = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "ecdsa-sha256"
        self.fingerprint = cert_fingerprint(self.cert)
        self.anchor_file = anchor_file
        self.store = store
        self.syslog = _syslog_handler(syslog) if syslog else None

    def sign(self, seq: int, digest: str, key_id: str, at: datetime | None = None) -> Anchor:
        """An anchor of record `seq` with hash `digest`, signed now."""
        t = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        a = Anchor(seq, digest, key_id, t, self.store, self.fingerprint, self.alg)
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            sig = self.key.sign(a.payload())
        else:
            sig = self.key.sign(a.payload(), ec.ECDSA(hashes.SHA256()))
        return replace(a, sig=base64.b64encode(sig).decode())

    def publish(self, anchor: Anchor) -> None:
        """Append to the anchor file (one write under a lock, fsynced), then send to syslog."""
        line = (anchor.line() + "\n").encode()
        self.anchor_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.anchor_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.syslog is not None:
            self.syslog.emit(logging.LogRecord(TAG, logging.INFO, __file__, 0, anchor.line(),
                                               None, None))

    def close(self) -> None:
        """Close the syslog connection."""
        if self.syslog is not None:
            self.syslog.close()


class _QuietSysLog(logging.handlers.SysLogHandler):
    """SysLogHandler that reports a failed send once as a warning instead of a traceback."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not self.failed:
            log.warning("trail anchor not sent to syslog %s (the anchor file has it)",
                        self.address)
        self.failed = True


def _syslog_handler(spec: str) -> logging.handlers.SysLogHandler | None:
    """``/dev/log`` (a Unix socket path), ``udp://HOST:PORT`` or ``tcp://HOST:PORT``."""
    address: str | tuple[str, int]
    kind = socket.SOCK_DGRAM
    if spec.startswith("/"):
        address = spec
    else:
        scheme, _, rest = spec.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("udp", "tcp") or not host or not port.isdigit():
            raise ConfigError(f"syslog target {spec!r}: expected /dev/log, udp://HOST:PORT or "
                              "tcp://HOST:PORT", key="DCOPS_TRAIL_SYSLOG")
        address = (host.strip("[]"), int(port))
        kind = socket.SOCK_STREAM if scheme == "tcp" else socket.SOCK_DGRAM
    try:
        h = _QuietSysLog(address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
                         socktype=kind)
    except OSError as exc:
        log.warning("trail anchors not sent to syslog %s: %s (the anchor file has them)",
                    spec, exc)
        return None
    h.ident = TAG + ": "
    h.append_nul = False
    if kind == socket.SOCK_STREAM:
        h.setFormatter(logging.Formatter("%(message)s\n"))  # newline framing for rsyslog imtcp
    return h


def read_anchors(path: Path) -> tuple[list[Anchor], list[str]]:
    """Anchors in a file (the anchor file or a syslog copy); problems name file:line.

    Lines without the anchor kind are skipped (other syslog messages); a line that carries it but
    does not parse is a problem.
    """
    anchors: list[Anchor] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [], [f"{path}: cannot read the anchors: {exc}"]
    for n, line in enumerate(text.splitlines(), 1):
        if KIND not in line:
            continue
        where = f"{path}:{n}"
        try:
            doc: Any = json.loads(line[line.index("{"):])
            a = Anchor(int(doc["seq"]), str(doc["hash"]), str(doc["key_id"]), str(doc["time"]),
                       str(doc["store"]), str(doc["cert_sha256"]), str(doc["alg"]),
                       str(doc["sig"]), where)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{where}: not a readable anchor ({exc!r})")
            continue
        anchors.append(a)
    return anchors, problems


def check_anchor(a: Anchor, certs: list[x509.Certificate],
                 issuers: list[x509.Certificate]) -> str | None:
    """None when the signature verifies with one of `certs` (issued by one of `issuers`, if any)."""
    cert = next((c for c in certs if cert_fingerprint(c) == a.cert_sha256), None)
    if cert is None:
        return (f"{a.where}: signed with certificate {a.cert_sha256[:16]}…, which is not among "
                "the trusted anchor certificates")
    bad = _signature_problem(a, cert)
    if bad:
        return f"{a.where}: {bad}"
    try:
        at = datetime.fromisoformat(a.time.replace("Z", "+00:00"))
    except ValueError:
        return f"{a.where}: time {a.time!r} is not ISO 8601"
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        return f"{a.where}: made at {a.time}, outside the certificate's validity"
    if issuers and not any(_issued_by(cert, i) for i in issuers):
        return f"{a.where}: the certificate is not issued by the given CA"
    return None


def _signature_problem(a: Anchor, cert: x509.Certificate) -> str | None:
    pub = cert.public_key()
    try:
        sig = base64.b64decode(a.sig.encode(), validate=True)
        if a.alg == "ed25519" and isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(sig, a.payload())
        elif a.alg == "ecdsa-sha256" and isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, a.payload(), ec.ECDSA(hashes.SHA256()))
        else:
            return f"algorithm {a.alg!r} does not match the certificate's key"
    except (InvalidSignature, ValueError):
        return "the signature does not match (anchor forged or altered)"
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def make_lab_signer(key_path: Path, cert_path: Path, common_name: str,
                    days: int = 825) -> None:
    """A self-signed Ed25519 key and certificate for the lab and tests (production: pki_cert)."""
    for p in (key_path, cert_path):
        if p.exists():
            raise ConfigError("exists already: not overwritten", file=str(p))
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .sign(key, None))
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

