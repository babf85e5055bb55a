"""How to reach and shape the JetStream bus: servers, TLS from our PKI, role user, retention.

One string configures it (`bus: nats://n1:4222,n2:4222,n3:4222?replicas=3&ca=...`), so a
collector's or detector's configuration names the bus the same way it names a spool path.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dcops.errors import ConfigError

_PREFIX = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
# Query keys that are file paths, durations, integers or booleans (the rest are strings).
_DURATIONS = {"max_age", "duplicate_window", "ack_timeout", "publish_timeout",
              "request_timeout", "replay_slack"}
_INTS = {"replicas", "max_bytes", "max_backlog", "max_inflight", "partitions"}
MAX_PARTITIONS = 256
_BOOLS = {"create"}
_ALIASES = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}


def parse_duration(text: str, what: str) -> float:
    """Seconds from `90`, `30s`, `10m`, `24h`, `7d` or `250ms`."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"{what}: expected a duration like 30s, 10m, 24h or 7d, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """Connection, security and stream shape of one bus (defaults: one node, R1, 7 days)."""

    servers: tuple[str, ...]
    prefix: str = "dcops"  # subjects <prefix>.events.>, streams <PREFIX>_EVENTS, ...
    replicas: int = 1  # 3 in production (a node may fail); 1 for a single node
    # Event subjects per site and source: 1 keeps `<prefix>.events.<site>.<source>`; S > 1 adds
    # `.p<k>`, k = crc32(host) % S, so the S partitions of a worker group each read one subject.
    partitions: int = 1
    max_age: float = 7 * 86400.0  # retention of events, seconds
    max_bytes: int = -1  # retention by size (-1: unlimited); the oldest go first
    storage: str = "file"
    duplicate_window: float = 600.0  # Nats-Msg-Id deduplication window, seconds
    max_backlog: int | None = 1_000_000  # publish blocks while the slowest cursor lags this much
    max_inflight: int = 500  # unacknowledged publishes at once
    ack_timeout: float = 5.0  # one publish acknowledgement
    publish_timeout: float = 60.0  # retrying a batch before BusUnavailable
    request_timeout: float = 5.0  # one API or KV request
    replay_slack: float | None = 86400.0  # replay reads from publish time `since - slack`
    create: bool = True  # create streams and buckets that are missing
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_hostname: str | None = None
    user: str | None = None
    password_file: str | None = None

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigError("bus: no NATS server given (expected nats://host:port)")
        if not _PREFIX.match(self.prefix):
            raise ConfigError(f"bus: prefix {self.prefix!r}: expected [a-z][a-z0-9_-]*")
        if self.replicas not in (1, 3, 5):
            raise ConfigError(f"bus: replicas={self.replicas}: expected 1, 3 or 5")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise ConfigError(f"bus: partitions={self.partitions}: expected 1 to {MAX_PARTITIONS} "
                              "(subjects per site and source a worker group splits by host)")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"bus: storage={self.storage!r}: expected file or memory")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("bus: cert and key go together (client certificate and its key)")
        if self.password_file and not self.user:
            raise ConfigError("bus: password_file given without user")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> JetStreamConfig:
        """Parse `nats://h1:4222,h2:4222?replicas=3&ca=/etc/ssl/dcops/chain.pem&user=collector`.

        `tls://` (or a `ca` query key) turns TLS on. Keyword arguments override the query.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("nats", "tls"):
            raise ConfigError(f"bus: {url!r}: expected a nats:// or tls:// URL")
        if "@" in parts.netloc:
            raise ConfigError("bus: credentials in the URL; use user=...&password_file=...")
        hosts = [h.strip() for h in parts.netloc.split(",") if h.strip()]
        scheme = "tls" if parts.scheme == "tls" else "nats"
        kw: dict[str, Any] = {"servers": tuple(f"{scheme}://{h}" for h in hosts)}
        known = {f.name for f in fields(cls)}
        extra: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            name = _ALIASES.get(key, key)
            if name not in known or name == "servers":
                extra[key] = value
                continue
            kw[name] = _convert(name, value)
        if extra:
            raise ConfigError(f"bus: unknown option(s) {', '.join(sorted(extra))} in {url!r}")
        kw.update(overrides)
        return cls(**kw)

    def with_(self, **changes: Any) -> JetStreamConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def tls(self) -> bool:
        """True when the connection is encrypted (tls:// or a CA file)."""
        return self.ca_file is not None or any(s.startswith("tls://") for s in self.servers)

    def ssl_context(self) -> ssl.SSLContext | None:
        """Client TLS context from the PKI's files (CA chain, this host's certificate and key)."""
        if not self.tls:
            return None
        for label, p in (("ca", self.ca_file), ("cert", self.cert_file),
                         ("key", self.key_file)):
            if p is not None and not Path(p).is_file():
                raise ConfigError(f"bus: {label} file {p} does not exist", file=p)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file and self.key_file:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"bus: cannot load client certificate: {exc}",
                                  file=self.cert_file) from exc
        return ctx

    def password(self) -> str | None:
        """The role user's password, read from its file (first line)."""
        if not self.password_file:
            return None
        try:
            text = Path(self.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"bus: cannot read password file: {exc}",
                              file=self.password_file) from exc
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError("bus: password file is empty", file=self.password_file, line=1)
        return lines[0]

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect` (reconnects forever; calls time out instead)."""
        opts: dict[str, Any] = {
            "servers": list(self.servers),
            "name": f"dcops-{self.prefix}",
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": max(1, int(self.request_timeout)),
        }
        ctx = self.ssl_context()
        if ctx is not None:
            opts["tls"] = ctx
            if self.tls_hostname:
                opts["tls_hostname"] = self.tls_hostname
        if self.user:
            opts["user"] = self.user
            opts["password"] = self.password() or ""
        return opts

    # names of the JetStream objects this bus uses
    @property
    def events_stream(self) -> str:
        """Stream holding every event."""
        return f"{self._upper}_EVENTS"

    @property
    def deadletter_stream(self) -> str:
        """Stream holding what could not be stored as an event."""
        return f"{self._upper}_DEADLETTERS"

    @property
    def cursor_bucket(self) -> str:
        """KV bucket of consumer cursors."""
        return f"{self._upper}_CURSORS"

    @property
    def checkpoint_bucket(self) -> str:
        """KV bucket of collector checkpoints (log tailer offsets)."""
        return f"{self._upper}_CHECKPOINTS"

    @property
    def state_bucket(self) -> str:
        """Object store of consumer state snapshots (correlation windows)."""
        return f"{self._upper}_STATE"

    @property
    def _upper(self) -> str:
        return self.prefix.upper().replace("-", "_")


def _convert(name: str, value: str) -> Any:
    if name in _DURATIONS:
        if name == "replay_slack" and value in ("", "none", "all"):
            return None
        return parse_duration(value, f"bus: {name}")
    if name in _INTS:
        if name == "max_backlog" and value in ("", "none"):
            return None
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"bus: {name}={value!r}: expected an integer") from None
    if name in _BOOLS:
        if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"bus: {name}={value!r}: expected true or false")
        return value.lower() in ("1", "true", "yes")
    return value
