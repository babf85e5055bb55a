"""Reaching a lab's hosts: SSH (ssh, Paramiko, Fabric), nsenter, and the controller namespace."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

from dcops.errors import LabError
from dcops.lab import netns, runtime, sshconf
from dcops.lab.hosts import CONTROLLER_ADDRESS, MAX_HOSTS, LabHost, check_lab_name
from dcops.lab.hosts import lab_hosts as catalogue_hosts
from dcops.lab.image import REPO_PORT
from dcops.lab.paths import state_root
from dcops.lab.state import LabState


class LabAccess:
    """Names, paths and state of a lab, and every way to run something on its hosts."""

    def __init__(self, name: str = "lab") -> None:
        self.name = check_lab_name(name)
        self.dir = state_root() / name
        self.ctl_netns = f"{name}-ctl"
        self.controller_address = CONTROLLER_ADDRESS
        self.repo_url = f"http://{CONTROLLER_ADDRESS}:{REPO_PORT}/"
        self.key_path = self.dir / "id_ed25519"
        self.ssh_config_path = self.dir / "ssh_config"
        self.known_hosts_path = self.dir / "known_hosts"
        self.inventory_path = self.dir / "inventory.yml"
        self.control_dir = sshconf.control_dir(name)
        self._state_path = self.dir / "state.json"
        self._lock = state_root() / f".{name}.lock"

    # ---- state ----------------------------------------------------------------------------
    def state(self) -> LabState | None:
        """The recorded state, or None when the lab is down."""
        return LabState.load(self._state_path)

    @property
    def mode(self) -> str | None:
        """chroot or systemd while the lab is up, None when it is down."""
        state = self.state()
        return state.mode if state else None

    @property
    def hosts(self) -> list[LabHost]:
        """The hosts of the running lab, in address order."""
        state = self.state()
        if state is None:
            return []
        return [h for h in catalogue_hosts(MAX_HOSTS) if h.name in state.hosts]

    def host(self, name: str) -> LabHost:
        """One running host by inventory name or address."""
        for host in self.hosts:
            if name in (host.name, host.address):
                return host
        raise LabError(f"lab {self.name}: no running host {name!r} "
                       f"(running: {', '.join(h.name for h in self.hosts) or 'none'})")

    def _netns_of(self, host: str) -> str:
        return f"{self.name}-{host}"

    # ---- reaching the hosts ---------------------------------------------------------------
    def ctl_argv(self, argv: Sequence[str]) -> list[str]:
        """argv that runs a command inside the controller namespace (address 10.77.0.1)."""
        return ["nsenter", f"--net={netns.path(self.ctl_netns)}", *argv]

    def ctl_popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running process in the controller namespace (e.g. a SOC collector)."""
        return subprocess.Popen(self.ctl_argv(argv), **kwargs)

    def ctl_run(self, argv: Sequence[str], *, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command in the controller namespace and wait for it."""
        return subprocess.run(self.ctl_argv(argv), capture_output=True, text=True, check=check,
                              timeout=timeout)

    def ssh_argv(self, host: str, *command: str) -> list[str]:
        """`ssh -F <lab ssh_config> host command...` (as the ansible user)."""
        return ["ssh", "-F", str(self.ssh_config_path), "-o", "BatchMode=yes",
                self.host(host).name, *command]

    def run(self, host: str, command: str, *, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a host over SSH as `ansible` (use `sudo` for root)."""
        proc = subprocess.run(self.ssh_argv(host, command), capture_output=True, text=True,
                              check=False, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise LabError(f"{host}: `{command}` exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-500:]}")
        return proc

    def host_pid(self, host: str) -> int:
        """The host's PID 1 as seen from this machine (/proc/<pid>/root is its root)."""
        state = self.state()
        record = state.hosts.get(self.host(host).name) if state else None
        if record is None or not runtime.running(state.mode if state else "", record.launcher,
                                                 record.leader):
            raise LabError(f"lab {self.name}: host {host} is not running")
        return record.leader

    def exec(self, host: str, argv: Sequence[str], *, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run argv as root inside a host without SSH (nsenter into all its namespaces)."""
        pid = self.host_pid(host)
        return subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r",
                               "-w", *argv], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def fabric_group(self, hosts: Sequence[str] | None = None, *, threading: bool = True) -> Any:
        """A Fabric ThreadingGroup (or SerialGroup) over lab hosts, configured from ssh_config."""
        from fabric import Config, SerialGroup, ThreadingGroup

        names = [self.host(h).name for h in hosts] if hosts else [h.name for h in self.hosts]
        config = Config(runtime_ssh_path=str(self.ssh_config_path))
        group_cls = ThreadingGroup if threading else SerialGroup
        return group_cls(*names, config=config)

    def paramiko_client(self, host: str, *, timeout: float = 10) -> Any:
        """A connected paramiko.SSHClient: `ansible` through the controller, host key checked."""
        import paramiko

        target = self.host(host)
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        proxy = paramiko.ProxyCommand(
            sshconf.proxy_command(self.ctl_netns).replace("%h", target.address)
            .replace("%p", "22"))
        client.connect(target.address, username=sshconf.LAB_USER,
                       key_filename=str(self.key_path), sock=proxy, timeout=timeout,
                       look_for_keys=False, allow_agent=False)
        return client
