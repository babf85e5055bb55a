"""SNMP agents for tests, benchmarks and the demo: net-snmp snmpd with v2c and v3 users."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from dcops.errors import LabError
from dcops.model.site import Device

MAX_PORTS_PER_SNMPD = 128  # net-snmp binds at most 128 agentAddress entries per process


@dataclass(frozen=True, slots=True)
class LabV3User:
    """A v3 user snmpd creates (passphrases are lab-only)."""

    name: str
    auth_protocol: str = "SHA"  # SHA, SHA-256 as net-snmp spells them in createUser
    auth_password: str = "lab-auth-pass"  # noqa: S105 (lab-only agent)
    priv_protocol: str = "AES"
    priv_password: str = "lab-priv-pass"  # noqa: S105 (lab-only agent)


DEFAULT_USERS = (
    LabV3User("nocv3"),
    LabV3User("nocv3sha256", "SHA-256", "lab-auth-pass256", "AES", "lab-priv-pass256"),
)


def free_udp_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel hands out now (bound and released together so they are distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Snmpd:
    """One snmpd process answering on up to 128 UDP ports of loopback addresses.

    Ports listen on 127.0.0.1 unless `addresses` gives a port another 127.0.0.0/8 address (so that
    each simulated device can have an address of its own, e.g. for the traps it sends).
    """

    workdir: Path
    ports: list[int]
    community: str = "lab-public"
    users: tuple[LabV3User, ...] = DEFAULT_USERS
    sys_name: str = "lab-snmpd"
    engine_id: str = ""
    addresses: dict[int, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def address(self, port: int) -> str:
        """The loopback address a port listens on."""
        return self.addresses.get(port, "127.0.0.1")

    def config(self) -> str:
        """The snmpd.conf text."""
        if not 0 < len(self.ports) <= MAX_PORTS_PER_SNMPD:
            raise LabError(f"snmpd takes 1..{MAX_PORTS_PER_SNMPD} ports, got {len(self.ports)}")
        lines = ["agentAddress " + ",".join(f"udp:{self.address(p)}:{p}" for p in self.ports),
                 f"rocommunity {self.community} 127.0.0.0/8",
                 f"sysName {self.sys_name}", "sysLocation dcops lab",
                 "sysContact noc@lab.invalid", "sysServices 72"]
        if self.engine_id:
            lines.append(f"engineID {self.engine_id}")
        for u in self.users:
            lines.append(f"createUser {u.name} {u.auth_protocol} {u.auth_password} "
                         f"{u.priv_protocol} {u.priv_password}")
            lines.append(f"rouser {u.name} priv")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> Snmpd:
        """Start snmpd in the foreground and wait until its first port answers."""
        exe = shutil.which("snmpd") or "/usr/sbin/snmpd"
        if not Path(exe).exists():
            raise LabError("snmpd not found: install the Debian package snmpd")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "snmpd.conf"
        conf.write_text(self.config())
        env = dict(os.environ, MIBS=":", SNMP_PERSISTENT_DIR=str(self.workdir / "persist"),
                   SNMPCONFPATH=str(self.workdir))
        log = (self.workdir / "snmpd.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, "-f", "-Lf", str(self.workdir / "snmpd.out"), "-C", "-I", "-smux",
             "-c", str(conf), "-p", str(self.workdir / "snmpd.pid")],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = (self.workdir / "snmpd.out")
                raise LabError(f"snmpd exited with {self.proc.returncode}: "
                               f"{out.read_text() if out.exists() else ''}")
            first, last = self.ports[0], self.ports[-1]
            if (_answers(first, self.community, self.address(first))
                    and _answers(last, self.community, self.address(last))):
                return self
            time.sleep(0.05)
        self.stop()
        raise LabError(f"snmpd did not answer on {self.address(self.ports[0])}:{self.ports[0]} "
                       f"within {timeout}s")

    def stop(self) -> None:
        """Stop snmpd (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> Snmpd:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _answers(port: int, community: str, host: str = "127.0.0.1") -> bool:
    """True once a v2c GET of sysUpTime.0 gets a reply."""
    c = community.encode()
    vb = bytes.fromhex("300e300c06082b060102010103000500")  # sysUpTime.0 = NULL
    pdu = bytes.fromhex("a0") + bytes((len(vb) + 9,)) + bytes.fromhex("020101020100020100") + vb
    body = bytes.fromhex("020101") + bytes((0x04, len(c))) + c + pdu
    req = bytes((0x30, len(body))) + body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(req, (host, port))
            s.recvfrom(4096)
        except OSError:
            return False
        return True


def agents_for_devices(devices: Iterable[Device], workdir: Path) -> list[Snmpd]:
    """snmpd processes (not started) answering for each device's port with its credentials.

    Devices must be on loopback (127.0.0.0/8; the lab inventory tells devices apart by port, and
    gives commune routers addresses of their own so their traps name them). v3 users and v2c
    communities come from the devices' own (Vault) credentials.
    """
    ports: list[int] = []
    addresses: dict[int, str] = {}
    users: dict[str, LabV3User] = {}
    communities: set[str] = set()
    for d in devices:
        address = "127.0.0.1" if d.address == "localhost" else d.address
        if not address.startswith("127.") or d.snmp is None:
            raise LabError(f"device {d.name}: lab agents serve loopback addresses only "
                           f"(127.0.0.0/8, address {d.address!r})")
        c = d.snmp
        if c.port in addresses:
            raise LabError(f"device {d.name}: SNMP port {c.port} is also used by another device")
        ports.append(c.port)
        addresses[c.port] = address
        if c.version == "3" and c.user and c.auth_key and c.priv_key:
            auth = {"SHA256": "SHA-256", "SHA512": "SHA-512"}.get(c.auth_protocol.upper(),
                                                                  c.auth_protocol or "SHA")
            users[c.user] = LabV3User(c.user, auth, c.auth_key.reveal(),
                                      c.priv_protocol or "AES", c.priv_key.reveal())
        elif c.community is not None:
            communities.add(c.community.reveal())
    if len(communities) > 1:
        raise LabError(f"lab agents support one v2c community, found {len(communities)}")
    chunks = [ports[i:i + MAX_PORTS_PER_SNMPD] for i in range(0, len(ports),
                                                             MAX_PORTS_PER_SNMPD)]
    return [Snmpd(workdir / f"snmpd{i}", chunk, community=next(iter(communities), "public"),
                  users=tuple(users.values()), sys_name=f"dcops-lab-{i}",
                  addresses={p: addresses[p] for p in chunk})
            for i, chunk in enumerate(chunks)]


def snmpsim_data_dir() -> Path | None:
    """The walks of real devices shipped by the `snmpsim-data` package, if installed."""
    for base in (Path(sys.prefix), Path(sys.base_prefix), Path("/usr/share")):
        cand = base / "snmpsim_data" / "data"
        if cand.is_dir():
            return cand
    return None


@dataclass
class Snmpsim:
    """snmpsim serving recorded devices on one port; each device's v2c community is its name."""

    workdir: Path
    port: int
    records: dict[str, Path]  # community (device name) -> .snmprec file
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 60.0) -> Snmpsim:
        """Start snmpsim-command-responder and wait until every record answers."""
        exe = Path(sys.executable).parent / "snmpsim-command-responder"
        if not exe.exists():
            raise LabError("snmpsim not installed (pip snmpsim, a dev dependency)")
        data = self.workdir / "data"
        cache = self.workdir / "cache"
        data.mkdir(parents=True, exist_ok=True)
        cache.mkdir(exist_ok=True)
        for community, rec in self.records.items():
            shutil.copyfile(rec, data / f"{community}.snmprec")
        # as root snmpsim must drop to some user; `nobody` cannot import from a venv under /root
        user = ["--process-user=root", "--process-group=root"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [str(exe), f"--data-dir={data}", f"--cache-dir={cache}",
             f"--agent-udpv4-endpoint=127.0.0.1:{self.port}", *user],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "snmpsim.log").open("wb"),
            start_new_session=True)
        deadline = time.monotonic() + timeout
        pending = set(self.records)
        while pending and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"snmpsim exited with {self.proc.returncode}: "
                               f"{(self.workdir / 'snmpsim.log').read_text()[-2000:]}")
            pending = {c for c in pending if not _answers(self.port, c)}
            time.sleep(0.1)
        if pending:
            self.stop()
            raise LabError(f"snmpsim did not serve {sorted(pending)} within {timeout}s")
        return self

    def stop(self) -> None:
        """Stop snmpsim."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
