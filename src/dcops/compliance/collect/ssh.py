"""Collect host evidence over SSH, hosts in parallel (at most `concurrency` at once), progress.

Every session checks the host's key against known_hosts (hostkeys.py): an unknown or changed key
refuses the whole collection with the host and both fingerprints named, and an inventory that
declares itself an example is refused before any connection.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcops.compliance.collect import hostkeys
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, script, split
from dcops.compliance.evidence import Evidence, iso, utcnow
from dcops.errors import HostKeyError
from dcops.inventory.ansible_io import render
from dcops.inventory.examples import refuse_example
from dcops.model import SiteModel

DEFAULT_CONCURRENCY = 32  # SSH sessions at once (`dcops audit run --ssh-concurrency`)
Progress = Callable[[str, bool, float, str], None]  # host name, ok, seconds, error (or "")


@dataclass(frozen=True, slots=True)
class Target:
    """How to reach one host: address, user, port, key, ProxyCommand, known_hosts, sudo.

    An empty known_hosts means OpenSSH's defaults (~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts):
    a host key is always checked, never accepted on first sight.
    """

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key_file: str = ""
    proxy_command: str = ""
    known_hosts: str = ""
    sudo: bool = False


def _opt(args: str, name: str) -> str:
    m = re.search(rf"{name}=(\"[^\"]*\"|'[^']*'|\S+)", args or "")
    return m.group(1).strip("\"'") if m else ""


def targets_from_hostvars(model: SiteModel, hostvars: dict[str, dict[str, Any]]
                          ) -> list[Target]:
    """Targets from Ansible host variables (ansible_host/user/port/key and ssh args), templated
    as Ansible would (e.g. `UserKnownHostsFile={{ inventory_dir }}/known_hosts`)."""
    out = []
    for host in model.hosts.values():
        hv = hostvars.get(host.name, {})

        def var(name: str, default: object, hv: dict[str, Any] = hv) -> str:
            return render(hv.get(name, default), hv)

        args = f"{var('ansible_ssh_common_args', '')} {var('ansible_ssh_extra_args', '')}"
        user = var("ansible_user", "root")
        out.append(Target(host.name, var("ansible_host", host.address), user,
                          int(var("ansible_port", 22)), var("ansible_ssh_private_key_file", ""),
                          _opt(args, "ProxyCommand"), _opt(args, "UserKnownHostsFile"),
                          sudo=user != "root"))
    return out


def targets_from_ssh_config(model: SiteModel, path: Path) -> list[Target]:
    """Targets from an ssh_config(5) file such as the one `dcops lab up` writes."""
    from paramiko import SSHConfig

    config = SSHConfig.from_path(str(path))
    out = []
    known = config.get_hostnames()
    for host in model.hosts.values():
        if host.name not in known:
            continue  # not reachable through this config (e.g. a lab host not started)
        c = config.lookup(host.name)
        keys = c.get("identityfile") or [""]
        user = str(c.get("user", "root"))
        out.append(Target(host.name, str(c.get("hostname", host.address)), user,
                          int(c.get("port", 22)), str(keys[0]), str(c.get("proxycommand", "")),
                          str(c.get("userknownhostsfile", "")).strip(), sudo=user != "root"))
    return out


def host_id(target: Target) -> hostkeys.HostId:
    """Which host a target is, for host key checks and their messages."""
    return hostkeys.HostId(target.name, target.address, target.port, target.known_hosts)


def _connection(target: Target, timeout: float, client: Any) -> Any:
    from fabric import Connection
    from paramiko import ProxyCommand

    kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout}
    if target.key_file:
        kwargs["key_filename"] = [target.key_file]
        kwargs["look_for_keys"] = False
    if target.proxy_command:
        cmd = (target.proxy_command.replace("%h", target.address)
               .replace("%p", str(target.port)).replace("%r", target.user))
        kwargs["sock"] = ProxyCommand(cmd)
    conn = Connection(target.address, user=target.user, port=target.port,
                      connect_kwargs=kwargs, connect_timeout=timeout)
    conn.client = client  # a verifying client, never Fabric's AutoAddPolicy
    conn.dcops_target = target
    return conn


class SshCollector:
    """Runs the host probes on every host of the model, in parallel, once per host."""

    name = "ssh"

    def __init__(self, targets: list[Target], *, timeout: float = 20.0,
                 progress: Progress | None = None, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ValueError(f"SSH concurrency must be at least 1, got {concurrency}")
        self.targets = targets
        self.timeout = timeout
        self.progress = progress
        self.concurrency = concurrency

    def _connections(self, wanted: list[Target]) -> list[Any]:
        """One verifying connection per target; HostKeyError (before any proxy or socket is
        opened) when a host has no known_hosts to check its key against."""
        clients, refused = [], []
        for target in wanted:
            try:
                clients.append(hostkeys.verifying_client(host_id(target)))
            except HostKeyError as exc:
                refused.append(str(exc))
        if refused:
            raise HostKeyError("\n".join(refused))
        return [_connection(t, self.timeout, c) for t, c in zip(wanted, clients, strict=True)]

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Probe every target; unreachable hosts become notes (their controls: no evidence).

        Raises ExampleSecretError for an example inventory, and HostKeyError (every refused host
        with its expected and presented fingerprints) when a host key is unknown or changed.
        """
        wanted = [t for t in self.targets if t.name in model.hosts]
        if not wanted:
            return
        refuse_example(model, "collect evidence over SSH from real hosts")
        conns = self._connections(wanted)
        body = script()
        report = self.progress
        spans: dict[str, tuple[datetime, datetime]] = {}  # host -> session start, end
        host_keys: dict[str, str] = {}  # host -> the key it presented (already verified)

        def run_one(conn: Any) -> Any:
            target: Target = conn.dcops_target
            command = f"sh -c {shlex.quote(body)}"
            if target.sudo:
                command = f"sudo -n {command}"
            begin = datetime.now(UTC)
            error = ""
            try:
                result = conn.run(command, hide=True, warn=True, in_stream=False)
                host_keys[target.name] = _host_key(conn)
                return result
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                raise
            finally:
                end = datetime.now(UTC)
                spans[target.name] = (begin, end)
                if report:
                    report(target.name, not error, (end - begin).total_seconds(), error)

        t0 = time.monotonic()
        try:
            results = _run_bounded(conns, run_one, self.concurrency)
        finally:
            for conn in conns:
                conn.close()
        elapsed = time.monotonic() - t0
        refused = _record(results, spans, host_keys, evidence)
        if refused:
            raise HostKeyError("\n".join(sorted(refused)))
        total = sum((e - b).total_seconds() for b, e in spans.values())
        evidence.notes.append(f"ssh: {len(results)} host(s) probed, at most {self.concurrency} "
                              f"at once, in {elapsed:.1f} s (sum of per-host sessions "
                              f"{total:.1f} s)")


def _host_key(conn: Any) -> str:
    """`<type> SHA256:<b64>` of the key the open session's host presented ("" if none)."""
    transport = conn.client.get_transport() if conn.client is not None else None
    key = transport.get_remote_server_key() if transport is not None else None
    return f"{key.get_name()} {hostkeys.fingerprint(key)}" if key is not None else ""


def _record(results: Any, spans: dict[str, tuple[datetime, datetime]],
            host_keys: dict[str, str], evidence: Evidence) -> list[str]:
    """Each host's session and probe sections as evidence; the host-key refusals."""
    refused: list[str] = []
    for conn, result in results.items():
        target = conn.dcops_target
        where = f"{target.user}@{target.address}:{target.port}"
        begin, end = spans.get(target.name, (utcnow(), utcnow()))
        key = host_keys.get(target.name, "")
        evidence.record("ssh", target.name, where, "ssh session (probe script)",
                        f"started {_ms(begin)} finished {_ms(end)} "
                        f"({(end - begin).total_seconds():.2f} s)",
                        ran_at=iso(begin), name="session", host_key=key)
        if isinstance(result, BaseException):
            key_error = hostkeys.as_host_key_error(host_id(target), result)
            if key_error is not None:
                refused.append(str(key_error))
            evidence.notes.append(f"{target.name}: SSH failed ({where}): "
                                  f"{type(result).__name__}: {result}")
            continue
        sections = split(result.stdout)
        records = {name: evidence.record("ssh", target.name, where, SECTIONS[name], out,
                                         rc=rc, ran_at=iso(begin), name=name, host_key=key)
                   for name, (out, rc) in sections.items()}
        parse_host(evidence, target.name, records, sections)
    return refused


def _ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds (session spans show the overlap between hosts)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_bounded(conns: list[Any], run_one: Callable[[Any], Any],
                 concurrency: int) -> dict[Any, Any]:
    """`run_one` on every connection, at most `concurrency` at once (100 hosts do not open 100
    sessions at once from a 2-core controller); each connection's result or its exception."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(conns))),
                            thread_name_prefix="dcops-ssh") as pool:
        futures = {conn: pool.submit(run_one, conn) for conn in conns}
    return {conn: (future.exception() or future.result()) for conn, future in futures.items()}
