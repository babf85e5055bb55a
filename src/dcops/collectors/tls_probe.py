"""TLS certificate expiry probe: endpoints and PEM files -> results, events and /metrics.

Like blackbox_exporter's ssl probe and x509-certificate-exporter. The leaf is read with
verification off (expired and self-signed certificates must be seen too); whether the chain
verifies against the system CA bundle (or `ca_file`) is recorded beside it.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dcops.errors import ConfigError
from dcops.model.event import Event, LogSource

PKI = LogSource(product="pki", service="tls_probe")
WARN_DAYS = 30  # certificates with fewer full days left are `certificate-expiring`
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Target:
    """A TLS endpoint: `host:port`, optionally with an SNI server name; `name` labels it."""

    host: str
    port: int
    sni: str = ""
    name: str = ""  # inventory / targets-file name; default the address

    @property
    def spec(self) -> str:
        """`host:port[@sni]` as given on the command line."""
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}" + (f"@{self.sni}" if self.sni else "")


def parse_target(spec: str, name: str = "", *, where: str = "--target") -> Target:
    """`HOST:PORT[@SNI]` (port 443 when omitted; IPv6 as `[::1]:443`)."""
    hostport, _, sni = spec.strip().partition("@")
    host, port_s = hostport, "443"
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_s = rest.removeprefix(":") or "443"
    elif hostport.count(":") == 1:
        host, _, port_s = hostport.partition(":")
    try:
        port = int(port_s)
    except ValueError:
        port = 0
    if not host or not 0 < port < 65536:
        raise ConfigError(f"{where} {spec!r}: expected HOST:PORT[@SNI], e.g. portal.gov.vn:443")
    return Target(host, port, sni, name or host)


def load_targets(path: Path) -> list[Target]:
    """A YAML list of `{name, target, sni?}`; errors name the file, line and entry."""
    try:
        text = path.read_text(encoding="utf-8")
        data, root = yaml.safe_load(text), yaml.compose(text)
    except OSError as exc:
        raise ConfigError(f"cannot read targets: {exc.strerror}", file=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ConfigError("expected a list of {name, target, sni} entries", file=str(path))
    out = []
    for i, (entry, node) in enumerate(zip(data, root.value, strict=True)):
        line = node.start_mark.line + 1
        if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
            raise ConfigError(f"entry {i + 1}: expected a mapping with a `target: HOST:PORT`",
                              file=str(path), line=line, key="target")
        if extra := set(entry) - {"name", "target", "sni"}:
            raise ConfigError(f"entry {i + 1}: unknown keys {', '.join(sorted(map(str, extra)))}"
                              " (expected name, target, sni)", file=str(path), line=line)
        t = parse_target(entry["target"], str(entry.get("name") or ""),
                         where=f"{path}:{line}: entry {i + 1} target")
        out.append(Target(t.host, t.port, str(entry.get("sni") or t.sni), t.name))
    return out


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the probe reports of one certificate."""

    subject: str  # RFC 4514
    subject_cn: str
    issuer: str
    issuer_cn: str
    serial: str  # upper-case hex without colons (ECS)
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    days_left: int  # full days from the probe to not_after; negative once expired


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    v = attrs[0].value if attrs else ""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def cert_info(cert: x509.Certificate, now: datetime) -> CertInfo:
    """Parse the fields the probe reports."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = (*ext.get_values_for_type(x509.DNSName),
                *(str(a) for a in ext.get_values_for_type(x509.IPAddress)))
    except x509.ExtensionNotFound:
        sans = ()
    after = cert.not_valid_after_utc
    return CertInfo(cert.subject.rfc4514_string(), _cn(cert.subject), cert.issuer.rfc4514_string(),
                    _cn(cert.issuer), f"{cert.serial_number:X}", sans, cert.not_valid_before_utc,
                    after, int((after - now).total_seconds() // DAY))


@dataclass(slots=True)
class ProbeResult:
    """One probed target: its certificates (TLS: the leaf; file: all of it) or why not."""

    target: str  # host:port[@sni] or the file path
    host: str  # host.name of events and the `host` label
    started: datetime
    duration: float = 0.0
    certs: tuple[CertInfo, ...] = ()
    error: str = ""
    error_kind: str = ""  # refused, timeout, dns, network, tls, file, parse
    verified: bool | None = None  # None: not checked
    verify_error: str = ""
    address: str = ""
    port: int = 0
    sni: str = ""
    path: str = ""

    @property
    def ok(self) -> bool:
        """True when a certificate was read."""
        return not self.error

    @property
    def cert(self) -> CertInfo | None:
        """The leaf (first certificate), if any."""
        return self.certs[0] if self.certs else None


def action(r: ProbeResult, cert: CertInfo | None, warn_days: int = WARN_DAYS) -> str:
    """`event.action` of a certificate (or of a failed probe)."""
    if not r.ok or cert is None:
        return "certificate-probe-failed"
    if cert.not_after <= r.started:
        return "certificate-expired"
    return "certificate-expiring" if cert.days_left < warn_days else "certificate-valid"


def needs_attention(results: Sequence[ProbeResult], warn_days: int = WARN_DAYS) -> bool:
    """True when a probe failed or a certificate expires within warn_days (or has)."""
    return any(action(r, c, warn_days) != "certificate-valid"
               for r in results for c in (r.certs or (None,)))


def _handshake(t: Target, ctx: ssl.SSLContext, timeout: float) -> bytes:
    with (socket.create_connection((t.host, t.port), timeout=timeout) as sock,
          ctx.wrap_socket(sock, server_hostname=t.sni or t.host) as tls):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def _why(exc: Exception, t: Target, timeout: float) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", f"connection refused by {t.host}:{t.port}"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no TLS answer from {t.host}:{t.port} within {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return "dns", f"cannot resolve {t.host}: {exc.strerror}"
    if isinstance(exc, ssl.SSLError | ConnectionResetError | BrokenPipeError):
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        return "tls", f"TLS handshake with {t.host}:{t.port} failed ({reason}); not a TLS service?"
    if isinstance(exc, ValueError):
        return "parse", f"unparsable certificate from {t.host}:{t.port}: {exc}"
    return "network", f"{t.host}:{t.port}: {getattr(exc, 'strerror', None) or exc}"


def read_context() -> ssl.SSLContext:
    """A client context that accepts any certificate: we read it, we do not trust it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def verify_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The system CA bundle, or only `ca_file` when given; host names checked."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def probe_endpoint(t: Target, timeout: float, verify_ctx: ssl.SSLContext,
                   read_ctx: ssl.SSLContext) -> ProbeResult:
    """Connect, record whether the chain verifies, and parse the leaf certificate."""
    r = ProbeResult(t.spec, t.name or t.host, datetime.now(UTC), address=t.host, port=t.port,
                    sni=t.sni)
    t0 = time.perf_counter()
    try:
        try:
            der = _handshake(t, verify_ctx, timeout)
            r.verified = True
        except ssl.SSLCertVerificationError as exc:
            r.verified, r.verify_error = False, str(exc.verify_message or exc.reason or exc)
            der = _handshake(t, read_ctx, timeout)  # again, only to read what it presents
        r.certs = (cert_info(x509.load_der_x509_certificate(der), r.started),)
    except (OSError, ValueError) as exc:
        r.error_kind, r.error = _why(exc, t, timeout)
        r.verified = None
    r.duration = time.perf_counter() - t0
    return r


def trust_store(ca_file: Path | None = None) -> Store | None:
    """The CAs files are verified against (system bundle unless ca_file); None if unreadable."""
    paths = ssl.get_default_verify_paths()
    path = str(ca_file) if ca_file else (paths.cafile or paths.openssl_cafile)
    try:
        with warnings.catch_warnings():  # system bundles hold old roots with negative serials
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return Store(x509.load_pem_x509_certificates(Path(path).read_bytes()))
    except (OSError, ValueError):
        return None


def _verify_file(certs: list[x509.Certificate], store: Store, now: datetime) -> str:
    """'' when the first certificate chains to the store through the others, else why not."""
    builder = (PolicyBuilder().store(store).time(now)
               .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=ExtensionPolicy.permit_all()))
    try:
        builder.build_client_verifier().verify(certs[0], certs[1:])
    except Exception as exc:  # VerificationError, or a leaf the webpki profile rejects
        return str(exc) or type(exc).__name__
    return ""


def probe_file(path: Path, host: str, store: Store | None = None) -> ProbeResult:
    """Every certificate of a PEM (or DER) file; verified when `store` is given."""
    r = ProbeResult(str(path), host, datetime.now(UTC), path=str(path))
    t0 = time.perf_counter()
    try:
        data = path.read_bytes()
    except OSError as exc:
        r.error_kind, r.error = "file", f"{path}: cannot read: {exc.strerror}"
        return r
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            certs = [x509.load_der_x509_certificate(data)]
        except ValueError:
            r.error_kind = "parse"
            r.error = f"{path}: no certificate found (expected PEM -----BEGIN CERTIFICATE-----)"
            return r
    r.certs = tuple(cert_info(c, r.started) for c in certs)
    if store is not None:
        r.verify_error = _verify_file(certs, store, r.started)
        r.verified = not r.verify_error
    r.duration = time.perf_counter() - t0
    return r


def probe_all(targets: Sequence[Target], files: Sequence[Path] = (), *, timeout: float = 5.0,
              ca_file: Path | None = None, file_host: str = "", concurrency: int = 16,
              ) -> list[ProbeResult]:
    """Probe everything concurrently (at most `concurrency` at once); order as given."""
    vctx, rctx = verify_context(ca_file), read_context()
    store = trust_store(ca_file) if files else None
    host = file_host or socket.gethostname()
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="tls-probe") as pool:
        futs = [pool.submit(probe_endpoint, t, timeout, vctx, rctx) for t in targets]
        futs += [pool.submit(probe_file, f, host, store) for f in files]
        return [f.result() for f in futs]


def _message(r: ProbeResult, c: CertInfo | None, act: str) -> str:
    what = f"file {r.path}" if r.path else f"{r.target} ({r.host})"
    if c is None:
        return f"TLS certificate probe of {what} failed: {r.error}"
    when = c.not_after.isoformat()
    return {"certificate-expired": f"certificate {c.subject_cn!r} of {what} expired on {when}",
            "certificate-expiring": f"certificate {c.subject_cn!r} of {what} expires in "
                                    f"{c.days_left} days ({when})"}.get(
        act, f"certificate {c.subject_cn!r} of {what} is valid for {c.days_left} more days")


def result_events(r: ProbeResult, warn_days: int = WARN_DAYS) -> list[Event]:
    """One event per certificate (or one for a failed probe); ids stable per target and day."""
    day = r.started.date().isoformat()
    out = []
    for c in r.certs or (None,):
        act = action(r, c, warn_days)
        f: dict[str, Any] = {
            "event.kind": "state", "event.category": "file" if r.path else "network",
            "event.type": "info", "event.module": "tls_probe",
            "event.dataset": "tls_probe.certificate", "event.action": act,
            "event.outcome": "success" if r.ok else "failure", "host.name": r.host,
            "observer.type": "tls_probe", "message": _message(r, c, act)}
        if r.path:
            f["file.path"] = r.path
        else:
            f |= {"server.address": r.address, "server.port": r.port}
            if r.sni:
                f["tls.client.server_name"] = r.sni
        if c is not None:
            f |= {"tls.server.x509.subject.common_name": c.subject_cn,
                  "tls.server.x509.subject.distinguished_name": c.subject,
                  "tls.server.x509.alternative_names": list(c.sans),
                  "tls.server.x509.issuer.common_name": c.issuer_cn,
                  "tls.server.x509.issuer.distinguished_name": c.issuer,
                  "tls.server.x509.serial_number": c.serial,
                  "tls.server.x509.not_before": c.not_before.isoformat(),
                  "tls.server.x509.not_after": c.not_after.isoformat(),
                  "tls.server.days_left": c.days_left}
        if r.verified is not None:
            f["tls.server.verified"] = r.verified
            if r.verify_error:
                f["tls.server.verify_error"] = r.verify_error
        if not r.ok:
            f |= {"error.type": r.error_kind, "error.message": r.error}
        key = c.serial if c is not None else f"failed:{r.error_kind}"
        out.append(Event(id=Event.make_id("tls_probe", r.target, key, day), timestamp=r.started,
                         source="tls_probe", logsource=PKI, fields=f,
                         raw=json.dumps({k: v for k, v in f.items() if k != "message"},
                                        sort_keys=True, default=str)))
    return out


def events(results: Sequence[ProbeResult], warn_days: int = WARN_DAYS) -> list[Event]:
    """The events of a probe run."""
    return [e for r in results for e in result_events(r, warn_days)]


class TlsMetrics(Collector):
    """The /metrics content of the last probe run (series of vanished certificates vanish)."""

    def __init__(self) -> None:
        self._snapshot: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        yield from self._snapshot

    def update(self, results: Sequence[ProbeResult]) -> None:
        """Rebuild the exposition from one probe run."""
        base = ["target", "host"]
        after = GaugeMetricFamily("dcops_tls_cert_not_after_timestamp_seconds",
                                  "Unix time the certificate expires (notAfter)",
                                  labels=[*base, "subject_cn", "issuer_cn", "serial"])
        ok = GaugeMetricFamily("dcops_tls_probe_success",
                               "1 if the last probe read a certificate", labels=base)
        dur = GaugeMetricFamily("dcops_tls_probe_duration_seconds",
                                "Duration of the last probe", labels=base)
        ver = GaugeMetricFamily("dcops_tls_cert_verified", "1 if the chain verified against "
                                "the CA bundle and the name matched", labels=base)
        for r in results:
            lv = [r.target, r.host]
            ok.add_metric(lv, 1.0 if r.ok else 0.0)
            dur.add_metric(lv, r.duration)
            if r.verified is not None:
                ver.add_metric(lv, 1.0 if r.verified else 0.0)
            for c in dict.fromkeys(r.certs):  # a bundle listing a certificate twice
                after.add_metric([*lv, c.subject_cn, c.issuer_cn, c.serial],
                                 c.not_after.timestamp())
        self._snapshot = [after, ok, dur, ver]
