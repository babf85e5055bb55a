"""Collect host evidence over SSH, all hosts in parallel (Fabric ThreadingGroup), with progress."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, script, split
from dcops.compliance.evidence import Evidence, iso, utcnow
from dcops.model import SiteModel

Progress = Callable[[str, bool], None]  # host name, ok


@dataclass(frozen=True, slots=True)
class Target:
    """How to reach one host: address, user, port, key, ProxyCommand, known_hosts, sudo."""

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
    """Targets from Ansible host variables (ansible_host/user/port/key and ssh args)."""
    out = []
    for host in model.hosts.values():
        hv = hostvars.get(host.name, {})
        args = f"{hv.get('ansible_ssh_common_args', '')} {hv.get('ansible_ssh_extra_args', '')}"
        user = str(hv.get("ansible_user", "root"))
        out.append(Target(host.name, str(hv.get("ansible_host", host.address)), user,
                          int(hv.get("ansible_port", 22)),
                          str(hv.get("ansible_ssh_private_key_file", "")),
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
                          str(c.get("userknownhostsfile", "")), sudo=user != "root"))
    return out


def _connection(target: Target, timeout: float) -> Any:
    from fabric import Connection
    from paramiko import ProxyCommand, RejectPolicy

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
    if target.known_hosts and Path(target.known_hosts).exists():
        conn.client.load_host_keys(target.known_hosts)
        conn.client.set_missing_host_key_policy(RejectPolicy())
    conn.dcops_target = target
    return conn


class SshCollector:
    """Runs the host probes on every host of the model, in parallel, once per host."""

    name = "ssh"

    def __init__(self, targets: list[Target], *, timeout: float = 20.0,
                 progress: Progress | None = None) -> None:
        self.targets = targets
        self.timeout = timeout
        self.progress = progress

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Probe every target; unreachable hosts become notes (their controls: no evidence)."""
        from fabric import ThreadingGroup
        from fabric.exceptions import GroupException

        wanted = [t for t in self.targets if t.name in model.hosts]
        if not wanted:
            return
        body = script()
        conns = [_connection(t, self.timeout) for t in wanted]
        group = ThreadingGroup.from_connections(conns)
        report = self.progress
        spans: dict[str, tuple[datetime, datetime]] = {}  # host -> session start, end

        def run_one(conn: Any) -> Any:
            target: Target = conn.dcops_target
            command = f"sh -c {shlex.quote(body)}"
            if target.sudo:
                command = f"sudo -n {command}"
            begin = datetime.now(UTC)
            try:
                return conn.run(command, hide=True, warn=True, in_stream=False)
            finally:
                spans[target.name] = (begin, datetime.now(UTC))
                if report:
                    report(target.name, True)

        t0 = time.monotonic()
        try:
            results = _run_group(group, run_one)
        except GroupException as exc:
            results = exc.result
        finally:
            for conn in conns:
                conn.close()
        elapsed = time.monotonic() - t0
        for conn, result in results.items():
            target = conn.dcops_target
            where = f"{target.user}@{target.address}:{target.port}"
            begin, end = spans.get(target.name, (utcnow(), utcnow()))
            evidence.record("ssh", target.name, where, "ssh session (probe script)",
                            f"started {_ms(begin)} finished {_ms(end)} "
                            f"({(end - begin).total_seconds():.2f} s)",
                            ran_at=iso(begin), name="session")
            if isinstance(result, BaseException):
                evidence.notes.append(f"{target.name}: SSH failed ({where}): "
                                      f"{type(result).__name__}: {result}")
                continue
            sections = split(result.stdout)
            records = {name: evidence.record("ssh", target.name, where, SECTIONS[name], out,
                                             rc=rc, ran_at=iso(begin), name=name)
                       for name, (out, rc) in sections.items()}
            parse_host(evidence, target.name, records, sections)
        total = sum((e - b).total_seconds() for b, e in spans.values())
        evidence.notes.append(f"ssh: {len(results)} host(s) probed in parallel in "
                              f"{elapsed:.1f} s (sum of per-host sessions {total:.1f} s)")


def _ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds (session spans show the overlap between hosts)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_group(group: Any, run_one: Callable[[Any], Any]) -> Any:
    """ThreadingGroup's thread-per-connection execution of `run_one` (Group._do on a method)."""
    for conn in group:
        conn.dcops_run = lambda c=conn: run_one(c)
    return group._do("dcops_run")
