"""SSH host keys: fingerprints, known_hosts files, and the policy that refuses the unknown.

Evidence is only as good as the host it came from: a machine in the middle could answer the probes
with whatever passes. So every SSH session checks the host's key against a known_hosts file, never
accepts a new key on first sight, and names the host and both fingerprints when it refuses.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramiko import MissingHostKeyPolicy

from dcops.errors import HostKeyError

# OpenSSH reads these when no UserKnownHostsFile is given (ssh_config(5)).
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


def fingerprint(key: Any) -> str:
    """OpenSSH's `SHA256:<base64>` fingerprint of a Paramiko key (or its wire blob)."""
    blob = key if isinstance(key, bytes) else key.asbytes()
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def host_pattern(address: str, port: int) -> str:
    """How known_hosts names a host: `address`, or `[address]:port` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True, slots=True)
class HostId:
    """Which host is meant: inventory name, address and port, and the known_hosts file used."""

    name: str
    address: str
    port: int
    known_hosts: str

    @property
    def where(self) -> str:
        """`name (address:port)` for messages."""
        return f"{self.name} ({self.address}:{self.port})"


def known_hosts_files(configured: str) -> list[Path]:
    """The file(s) to check against: the configured ones (whitespace-separated, as in
    ssh_config), else OpenSSH's defaults that exist."""
    if configured.strip():
        return [Path(p).expanduser() for p in configured.split()]
    return [p for p in (Path(d).expanduser() for d in DEFAULT_KNOWN_HOSTS) if p.is_file()]


def load(files: list[Path]) -> Any:
    """A paramiko.HostKeys with every entry of `files` (missing files: HostKeyError)."""
    from paramiko import HostKeys

    keys = HostKeys()
    for file in files:
        try:
            keys.load(str(file))
        except OSError as exc:
            raise HostKeyError(f"known_hosts {file}: {exc.strerror}") from exc
    return keys


def expected(host: HostId, keys: Any) -> list[str]:
    """Fingerprints recorded for the host (by address/port, as ssh looks it up)."""
    entry = keys.lookup(host_pattern(host.address, host.port))
    return [f"{kind} {fingerprint(key)}" for kind, key in (entry or {}).items()]


def unknown_message(host: HostId, presented: Any) -> str:
    """The refusal for a host whose key is not recorded."""
    trust = f"dcops hosts trust {host.name} -i INVENTORY"
    return (f"{host.where}: unknown SSH host key / khóa máy chủ chưa được ghi nhận — expected: "
            f"none recorded for {host_pattern(host.address, host.port)} in "
            f"{host.known_hosts or 'known_hosts'}; presented: {presented.get_name()} "
            f"{fingerprint(presented)}. Compare it with the host's own "
            f"`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` (console, not the network) and "
            f"record it with `{trust}`; no evidence is collected from an unverified host")


def changed_message(host: HostId, recorded: Any, presented: Any) -> str:
    """The refusal for a host whose key differs from the recorded one."""
    return (f"{host.where}: SSH host key CHANGED / khóa máy chủ đã thay đổi — expected "
            f"{recorded.get_name()} {fingerprint(recorded)} ({host.known_hosts}), presented "
            f"{presented.get_name()} {fingerprint(presented)}. Someone may be in the middle, or "
            f"the host was rebuilt: verify on the host, then `dcops hosts trust {host.name} "
            "-i INVENTORY` replaces the recorded key; no evidence is collected meanwhile")


class RefuseUnknown(MissingHostKeyPolicy):
    """Paramiko MissingHostKeyPolicy: an unknown host key is refused with a clear error."""

    def __init__(self, host: HostId) -> None:
        self.host = host

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        """Refuse (never add) a key known_hosts does not hold."""
        del client, hostname
        raise HostKeyError(unknown_message(self.host, key))


def verifying_client(host: HostId) -> Any:
    """A paramiko.SSHClient that accepts only the host keys recorded in known_hosts."""
    from paramiko import SSHClient

    files = known_hosts_files(host.known_hosts)
    if not files:
        wanted = host.known_hosts or " or ".join(DEFAULT_KNOWN_HOSTS)
        raise HostKeyError(f"{host.where}: no known_hosts file (expected {wanted}); record the "
                           f"host's key with `dcops hosts trust {host.name} -i INVENTORY`")
    client = SSHClient()  # only these files: ~/.ssh/known_hosts is not read behind our back
    for file in files:
        try:
            client.load_host_keys(str(file))
        except OSError as exc:
            raise HostKeyError(f"{host.where}: known_hosts {file}: {exc.strerror}") from exc
    client.set_missing_host_key_policy(RefuseUnknown(host))
    return client


def as_host_key_error(host: HostId, exc: BaseException) -> HostKeyError | None:
    """The HostKeyError an SSH failure amounts to (changed or unknown key), else None."""
    from paramiko import BadHostKeyException

    if isinstance(exc, HostKeyError):
        return exc
    if isinstance(exc, BadHostKeyException):
        return HostKeyError(changed_message(host, exc.expected_key, exc.key))
    return None


def presented_key(address: str, port: int, sock: Any = None, timeout: float = 15.0) -> Any:
    """The host key a server presents (an SSH handshake, no authentication)."""
    import socket

    from paramiko import SSHException, Transport

    if sock is None:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            raise HostKeyError(f"{address}:{port}: cannot connect: {exc}") from exc
    transport = Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (SSHException, EOFError, OSError) as exc:
        raise HostKeyError(f"{address}:{port}: SSH handshake failed: {exc}") from exc
    finally:
        transport.close()


def record(file: Path, address: str, port: int, key: Any, names: tuple[str, ...] = ()) -> bool:
    """Record `key` for the host in `file`, replacing its keys of that type; True if changed."""
    from paramiko import HostKeys

    file.parent.mkdir(parents=True, exist_ok=True)
    keys = HostKeys(str(file)) if file.is_file() else HostKeys()
    pattern = host_pattern(address, port)
    current = keys.lookup(pattern)
    if current is not None and current.get(key.get_name()) == key:
        return False
    lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
    kept = [line for line in lines if not _names_host(line, pattern, key.get_name())]
    host_field = ",".join(dict.fromkeys((pattern, *names)))
    kept.append(f"{host_field} {key.get_name()} {key.get_base64()}")
    file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return True


def _names_host(line: str, pattern: str, kind: str) -> bool:
    fields = line.split()
    if len(fields) < 3 or line.lstrip().startswith("#"):
        return False
    return pattern in fields[0].split(",") and fields[1] == kind
