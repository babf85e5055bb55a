"""A named local lab: controller namespace, hosts, apt repository, and how to reach them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dcops.errors import LabError
from dcops.lab import auditd_sidecar, netns, prepare, probe, procs, runtime, sshconf
from dcops.lab.access import LabAccess
from dcops.lab.aptrepo import ensure_repo
from dcops.lab.hosts import CATALOGUE, CONTROLLER_ADDRESS, MAX_HOSTS, LabHost
from dcops.lab.hosts import lab_hosts as catalogue_hosts
from dcops.lab.image import REPO_PORT, ensure_image, file_lock
from dcops.lab.paths import state_root
from dcops.lab.recipe import Recipe
from dcops.lab.state import HostRecord, LabState

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    """Default progress sink: say nothing."""


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One row of `dcops lab status`."""

    host: str
    address: str
    mode: str
    up: bool
    sshd: bool


class Lab(LabAccess):
    """A lab named `name`: `Lab("t1").up(hosts=3, mode="chroot")`, `.run(host, cmd)`, `.down()`."""

    # ---- up -------------------------------------------------------------------------------
    def up(self, hosts: int = 3, mode: str = "chroot", *, log: Log = _quiet) -> list[LabHost]:
        """Start (or converge to) `hosts` hosts in `mode`; idempotent. Returns the hosts."""
        if mode not in runtime.MODES:
            raise LabError(f"--mode {mode}: expected one of {', '.join(runtime.MODES)}")
        wanted = catalogue_hosts(hosts)
        recipe = Recipe()
        base = ensure_image(recipe, log=log)
        repo = ensure_repo(base, recipe.image_name, log=log)
        with file_lock(self._lock):
            state = self.state()
            if state is not None and state.mode != mode and any(
                    runtime.running(state.mode, r.launcher, r.leader)
                    for r in state.hosts.values()):
                raise LabError(f"lab {self.name} is up in {state.mode} mode; run "
                               f"`dcops lab down --name {self.name}` before --mode {mode}")
            if state is None or state.mode != mode:
                state = LabState(self.name, mode, str(base), str(repo))
            self.dir.mkdir(parents=True, exist_ok=True)
            self.control_dir.mkdir(parents=True, exist_ok=True)
            public = prepare.ensure_user_key(self.key_path, f"dcops-lab-{self.name}")
            netns.ensure_controller(self.ctl_netns)
            self._ensure_repo_server(state, repo)
            for record in [r for n, r in state.hosts.items() if n not in {h.name for h in wanted}]:
                log(f"stopping {record.name} (not among the {hosts} hosts asked for)")
                self._stop_host(state, record)
            keys: dict[LabHost, str] = {}
            for host in wanted:
                keys[host] = self._ensure_host(state, host, wanted, public, Path(state.base),
                                               log)
                state.save(self._state_path)
            self._write_client_files(wanted, keys)
            silent = probe.wait_sshd(self.ctl_netns, [h.address for h in wanted],
                                     timeout=90 if mode == "systemd" else 30)
            if silent:
                raise LabError(f"lab {self.name}: sshd did not answer on {', '.join(silent)} "
                               f"(logs in {self.dir}/hosts/*/console.log)")
            log(f"lab {self.name} up: {len(wanted)} hosts in {mode} mode")
            return wanted

    def _ensure_repo_server(self, state: LabState, repo: Path) -> None:
        if state.http_pid and "http.server" in procs.cmdline(state.http_pid):
            return
        log_path = self.dir / "apt-repo.log"
        argv = self.ctl_argv([sys.executable, "-m", "http.server", str(REPO_PORT), "--bind",
                              CONTROLLER_ADDRESS, "--directory", str(repo)])
        with log_path.open("ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        state.http_pid = proc.pid

    def _ensure_host(self, state: LabState, host: LabHost, wanted: list[LabHost], public: str,
                     base: Path, log: Log) -> str:
        record = state.hosts.get(host.name)
        host_dir = self.dir / "hosts" / host.name
        merged = prepare.mount_overlay(base, host_dir)
        prepare.stale_apt_lists(merged, host_dir / "upper")
        prepare.write_names(merged, host, wanted)
        key = prepare.host_key(merged, host)
        if record and runtime.running(state.mode, record.launcher, record.leader):
            return key
        if record:
            runtime.stop(state.mode, record.launcher, record.leader)
        ns = self._netns_of(host.name)
        netns.ensure_host(self.ctl_netns, ns, host)
        prepare.authorize(merged, public)
        log(f"starting {host.name} ({host.address}, {state.mode})")
        launcher, leader = runtime.start(
            state.mode, hostname=host.name, machine=f"{self.name}-{host.name}",
            netns_path=netns.path(ns), merged=merged, log=host_dir / "console.log")
        state.hosts[host.name] = HostRecord(host.name, host.address, ns, str(merged),
                                            launcher, leader)
        return key

    def _write_client_files(self, hosts: list[LabHost], keys: dict[LabHost, str]) -> None:
        self.known_hosts_path.write_text(sshconf.known_hosts(keys))
        self.ssh_config_path.write_text(sshconf.ssh_config(
            hosts, ctl_netns=self.ctl_netns, key=self.key_path, known_hosts=self.known_hosts_path,
            control=self.control_dir))
        connection = sshconf.lab_connection(self.name, ctl_netns=self.ctl_netns,
                                            key=self.key_path, known=self.known_hosts_path)
        header = (f"---\n# Lab {self.name!r}: generated by `dcops lab up`; use with\n"
                  f"# ansible-playbook -i inventories/lab -i {self.inventory_path}\n")
        self.inventory_path.write_text(sshconf.dump(sshconf.inventory(hosts, connection), header))

    # ---- down -----------------------------------------------------------------------------
    def _stop_host(self, state: LabState, record: HostRecord, *, requested: bool = False,
                   ) -> None:
        auditd_sidecar.down(self.name, host=record.name)
        runtime.stop(state.mode, record.launcher, record.leader, requested=requested)
        netns.kill_all(record.netns)
        prepare.unmount_under(Path(record.merged).parent)
        netns.delete(record.netns)
        shutil.rmtree(Path(record.merged).parent, ignore_errors=True)
        state.hosts.pop(record.name, None)

    def down(self, *, log: Log = _quiet) -> None:
        """Stop everything the lab started: processes, mounts, namespaces, SSH masters, state."""
        with file_lock(self._lock):
            if auditd_sidecar.down(self.name) is not None:  # while its host can still run auditctl
                log("audit sidecar stopped, its rules deleted")
            self._close_ssh_masters()
            state = self.state()
            if state is not None:
                for record in state.hosts.values():  # systemd hosts power off in parallel
                    runtime.request_stop(state.mode, record.launcher)
                for record in list(state.hosts.values()):
                    log(f"stopping {record.name}")
                    self._stop_host(state, record, requested=True)
                if "http.server" in procs.cmdline(state.http_pid):
                    procs.stop([state.http_pid], timeout=3)
            # whatever a crashed `up` may have left without recording it
            for host in catalogue_hosts(MAX_HOSTS):
                ns = self._netns_of(host.name)
                if netns.exists(ns):
                    netns.kill_all(ns)
                    netns.delete(ns)
            netns.kill_all(self.ctl_netns)
            prepare.unmount_under(self.dir)
            netns.delete(self.ctl_netns)
            netns.release_mountpoint()
            shutil.rmtree(self.control_dir, ignore_errors=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            log(f"lab {self.name} down")

    def _close_ssh_masters(self) -> None:
        if not self.control_dir.is_dir():
            return
        for sock in self.control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"],
                           capture_output=True, check=False, timeout=10)

    # ---- audit sidecar (docs/lab.md) -------------------------------------------------------
    def audit_up(self, host: str, rules: Path | None = None) -> auditd_sidecar.SidecarRecord:
        """Run `host`'s own auditd where the kernel accepts it and load its rules (or `rules`).

        Only rule lines are loaded (never -e/-f/-b/-D); one sidecar per machine.
        """
        name = self.host(host).name
        state = self.state()
        record = state.hosts[name] if state else None
        if state is None or record is None:
            raise LabError(f"lab {self.name}: host {host} is not running")
        leader = self.host_pid(name)
        text = None
        if rules is not None:
            try:
                text = rules.read_text()
            except OSError as exc:
                raise LabError(f"--rules {rules}: {exc.strerror}") from exc
        return auditd_sidecar.up(self.name, name, leader, record.merged, text, str(rules),
                        self.dir / "hosts" / name / "audit-sidecar.log")

    def audit_down(self) -> auditd_sidecar.SidecarRecord | None:
        """Stop this lab's audit sidecar: rules deleted, daemon stopped, kernel as before."""
        return auditd_sidecar.down(self.name)

    def audit_status(self) -> auditd_sidecar.SidecarRecord | None:
        """The machine's audit sidecar when it is this lab's, else None."""
        record = auditd_sidecar.current()
        return record if record is not None and record.lab == self.name else None

    def audit_kernel(self, host: str) -> tuple[dict[str, str], list[str]]:
        """The kernel's audit status and rules (`auditctl -s`, `-l`) through `host`'s auditctl."""
        name = self.host(host).name
        state = self.state()
        if state is None or name not in state.hosts:
            raise LabError(f"lab {self.name}: host {host} is not running")
        leader, merged = self.host_pid(name), state.hosts[name].merged
        if not Path(merged, "usr/sbin/auditctl").exists():
            raise LabError(f"lab {self.name}: host {name} has no /sbin/auditctl (install auditd)")
        return (auditd_sidecar.kernel_status(leader, merged),
                auditd_sidecar.loaded_rules(leader, merged))

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> list[HostStatus]:
        """Each recorded host: is its PID 1 alive, does its sshd answer."""
        state = self.state()
        if state is None:
            return []
        answers = probe.sshd_answers(self.ctl_netns, [r.address for r in state.hosts.values()])
        return [HostStatus(r.name, r.address, state.mode,
                           runtime.running(state.mode, r.launcher, r.leader),
                           answers.get(r.address, False)) for r in state.hosts.values()]


def running_labs() -> list[Lab]:
    """Every lab with recorded state under the state directory (up, or half up)."""
    root = state_root()
    if not root.is_dir():
        return []
    return [Lab(p.parent.name) for p in sorted(root.glob("*/state.json"))]


__all__ = ["CATALOGUE", "HostStatus", "Lab", "running_labs"]
