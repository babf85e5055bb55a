"""Bench devices built from real SNMP walks (snmpsim-data recordings) and served by snmpd.

A recording's interfaces (ifIndex order, ifName/ifDescr), IPv4 addresses (ipAddrTable) and routes
(ipCidrRouteTable / inetCidrRouteTable, IPv4) are re-created in a network namespace of their own:
one inert interface per recorded interface (ifb: the kernel here has no dummy module), named
after the recorded ifName made legal (<= 15 characters, no '/', ':' or blanks; the recorded name
is kept as the alias = ifAlias), the recorded addresses and routes on them, and a veth "mgmt"
port to the host on 198.18.N.2/30 (RFC 2544 benchmark range). snmpd runs inside the namespace,
so its IF-MIB, IP-MIB and route tables have the recorded device's shape, answered at C speed
(snmpsim answers ~5-7k OIDs/s per process and would be the bottleneck of both pollers: the race
would measure it). Counters and speeds are the ifb interfaces' (zero): the recordings' values
are not served.

Agents listen on the namespace's own address, so their UDP ports cannot collide with anything on
the host (a namespace has a port space of its own).
"""

from __future__ import annotations

import bz2
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from dcops.lab.snmp import DEFAULT_USERS, LabV3User  # noqa: E402

SYSTEM = {"1.3.6.1.2.1.1.1.0": "sysDescr", "1.3.6.1.2.1.1.2.0": "sysObjectID",
          "1.3.6.1.2.1.1.5.0": "sysName"}
IF_DESCR = "1.3.6.1.2.1.2.2.1.2."
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1."
IP_ADDR_IF = "1.3.6.1.2.1.4.20.1.2."
IP_ADDR_MASK = "1.3.6.1.2.1.4.20.1.3."
CIDR_IF = "1.3.6.1.2.1.4.24.4.1.5."     # ipCidrRouteIfIndex.dest.mask.tos.nexthop
INET_CIDR_IF = "1.3.6.1.2.1.4.24.7.1.7."  # inetCidrRouteIfIndex.type.len.dest.pfx.policy.nh


def _value(typ: str, raw: str) -> str:
    if typ.endswith("x"):
        try:
            data = bytes.fromhex(raw)
        except ValueError:
            return raw
        if typ.startswith("64"):
            return ".".join(str(b) for b in data)
        return data.decode("utf-8", "replace")
    return raw


def _prefixlen(mask: str) -> int | None:
    """Prefix length of a dotted mask; None for the malformed masks some recordings carry."""
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError:
        return None


def _route(oid: str) -> tuple[str, int] | None:
    """(destination, prefix length) of an IPv4 ipCidrRouteIfIndex / inetCidrRouteIfIndex OID."""
    if oid.startswith(CIDR_IF):
        arcs = oid[len(CIDR_IF):].split(".")
        plen = _prefixlen(".".join(arcs[4:8]))
        return None if plen is None else (".".join(arcs[0:4]), plen)
    if oid.startswith(INET_CIDR_IF):
        nums = [int(a) for a in oid[len(INET_CIDR_IF):].split(".")]
        return (".".join(map(str, nums[2:6])), nums[6]) if nums[:2] == [1, 4] else None
    return None


ABBREV = (("TenGigabitEthernet", "Te"), ("XGigabitEthernet", "XGE"), ("GigabitEthernet", "GE"),
          ("FastEthernet", "Fa"), ("Ethernet", "Eth"), ("Port-channel", "Po"))


@dataclass
class Recording:
    path: Path
    interfaces: dict[int, str]             # ifIndex -> recorded ifName (or ifDescr)
    addresses: list[tuple[str, int, int]]  # (address, prefix length, ifIndex)
    routes: list[tuple[str, int, int]]     # (destination, prefix length, ifIndex)
    system: dict[str, str] = field(default_factory=dict)  # sysDescr, sysObjectID, sysName

    @property
    def name(self) -> str:
        return self.path.name.split(".")[0]


def load_recording(path: Path) -> Recording:
    """Parse an .snmprec (or .snmprec.bz2): `OID|TYPE|VALUE` lines, 4x/64x = hex."""
    opener = bz2.open if path.suffix == ".bz2" else open
    descr: dict[int, str] = {}
    names: dict[int, str] = {}
    addr_if: dict[str, int] = {}
    addr_mask: dict[str, int] = {}
    routes: dict[tuple[str, int], int] = {}
    system: dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            oid, sep, rest = line.rstrip("\n").partition("|")
            typ, sep2, raw = rest.partition("|")
            if not (sep and sep2):
                raise ValueError(f"{path}:{n}: expected OID|TYPE|VALUE, got {line[:60]!r}")
            if oid in SYSTEM:
                system[SYSTEM[oid]] = _value(typ, raw)
            elif oid.startswith(IF_DESCR):
                descr[int(oid[len(IF_DESCR):])] = _value(typ, raw)
            elif oid.startswith(IF_NAME):
                names[int(oid[len(IF_NAME):])] = _value(typ, raw)
            elif oid.startswith(IP_ADDR_IF):
                addr_if[oid[len(IP_ADDR_IF):]] = int(raw)
            elif oid.startswith(IP_ADDR_MASK):
                if (plen := _prefixlen(_value(typ, raw))) is not None:
                    addr_mask[oid[len(IP_ADDR_MASK):]] = plen
            elif (route := _route(oid)) is not None:
                routes[route] = int(raw)
    ifs = {i: names.get(i) or descr.get(i) or f"if{i}" for i in sorted(set(descr) | set(names))}
    addrs = [(a, addr_mask.get(a, 32), i) for a, i in addr_if.items()]
    return Recording(path, ifs, addrs, [(d, p, i) for (d, p), i in routes.items()], system)


def linux_names(ifs: dict[int, str]) -> dict[int, str]:
    """Legal, distinct Linux interface names (<= 15 chars) for the recorded ones."""
    out: dict[int, str] = {}
    used = {"lo", "mgmt"}
    for idx, recorded in ifs.items():
        name = recorded
        for long, short in ABBREV:
            name = name.replace(long, short)
        base = re.sub(r"[^A-Za-z0-9._-]", "", name.replace("/", "-").replace(":", "-"))
        base = (base or f"if{idx}")[:15]
        cand = base
        if cand in used:
            cand = f"{base[:15 - len(str(idx)) - 1]}_{idx}"
        used.add(cand)
        out[idx] = cand
    return out


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass
class RecordedDevice:
    """A recording re-created in netns `ns`, reachable from the host at `address`."""

    rec: Recording
    slot: int  # 1..250: 198.18.slot.0/30 and the namespace name
    ns: str = field(init=False)
    address: str = field(init=False)
    skipped: int = field(default=0, init=False)
    kind: str = "ifb"  # the kernel here has no `dummy` module; ifb is as inert and built in

    def __post_init__(self) -> None:
        if not 1 <= self.slot <= 250:
            raise ValueError(f"slot must be 1..250, got {self.slot}")
        self.ns = f"dcops-fb{os.getpid() % 10000}-{self.slot}"
        self.address = f"198.18.{self.slot}.2"

    def create(self) -> None:
        if os.geteuid() != 0:
            raise SystemExit("recorded devices need root (network namespaces)")
        _ip("netns", "add", self.ns)
        host_if = f"fbm{os.getpid() % 10000}-{self.slot}"[:15]
        names = linux_names(self.rec.interfaces)
        cmds = ["link set lo up"]
        for idx, n in names.items():
            alias = self.rec.interfaces[idx].replace('"', "")
            cmds += [f"link add {n} type {self.kind}", f'link set {n} alias "{alias}"',
                     f"link set {n} up"]
        for a, p, i in self.rec.addresses:
            if i in names and not a.startswith("127."):
                cmds.append(f"addr add {a}/{p} dev {names[i]}")
        for d, p, i in self.rec.routes:
            if i in names and p > 0 and not d.startswith(("127.", "198.18.", "198.19.")):
                cmds.append(f"route add {d}/{p} dev {names[i]}")
        batch = "\n".join(cmds) + "\n"
        r = subprocess.run(["ip", "-n", self.ns, "-force", "-batch", "-"], input=batch,
                           capture_output=True, text=True, check=False)
        self.skipped = r.stderr.count("Error")  # e.g. a route the recording has twice
        _ip("link", "add", host_if, "type", "veth", "peer", "name", "mgmt", "netns", self.ns)
        _ip("addr", "add", f"198.18.{self.slot}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", self.ns, "addr", "add", f"{self.address}/30", "dev", "mgmt")
        _ip("-n", self.ns, "link", "set", "mgmt", "up")

    def destroy(self) -> None:
        _ip("netns", "del", self.ns, check=False)  # the veth pair goes with it


@dataclass
class NsSnmpd:
    """snmpd inside a RecordedDevice's namespace, one agent port per simulated device."""

    dev: RecordedDevice
    workdir: Path
    ports: list[int]
    community: str
    users: tuple[LabV3User, ...] = DEFAULT_USERS
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        exe = shutil.which("snmpd") or "/usr/sbin/snmpd"
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = ["agentAddress " + ",".join(f"udp:{self.dev.address}:{p}" for p in self.ports),
                 f"rocommunity {self.community} 198.18.0.0/15",
                 f"sysName {self.dev.rec.name}", "sysLocation dcops bench",
                 *(f"{k} {' '.join(v.split())}" for k, v in self.dev.rec.system.items()
                   if k != "sysName" and v.strip()),
                 f"engineID dcopsbench{self.dev.slot}"]
        for u in self.users:
            lines += [f"createUser {u.name} {u.auth_protocol} {u.auth_password} "
                      f"{u.priv_protocol} {u.priv_password}", f"rouser {u.name} priv"]
        conf = self.workdir / "snmpd.conf"
        conf.write_text("\n".join(lines) + "\n")
        env = dict(os.environ, MIBS=":", SNMP_PERSISTENT_DIR=str(self.workdir / "persist"),
                   SNMPCONFPATH=str(self.workdir))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.dev.ns, exe, "-f", "-Lf",
             str(self.workdir / "snmpd.out"), "-C", "-I", "-smux", "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"snmpd in {self.dev.ns} exited: "
                                 f"{(self.workdir / 'snmpd.out').read_text()}")
            if all(self._answers(p) for p in (self.ports[0], self.ports[-1])):
                return
            time.sleep(0.1)
        raise SystemExit(f"snmpd in {self.dev.ns} did not answer within {timeout}s")

    def _answers(self, port: int) -> bool:
        r = subprocess.run(["snmpget", "-v2c", "-c", self.community, "-t", "0.3", "-r", "0",
                            "-On", f"udp:{self.dev.address}:{port}", "1.3.6.1.2.1.1.5.0"],
                           capture_output=True, text=True, env=dict(os.environ, MIBS=":"),
                           check=False)
        return r.returncode == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
