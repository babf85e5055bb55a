"""Poll devices by profile: bounded concurrency, one socket and one time budget per device."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.client import SnmpClient, SnmpError, Target
from dcops.collectors.snmp.profiles import Profile
from dcops.collectors.snmp.usm import UsmError, UsmUser
from dcops.errors import CollectorError
from dcops.model.site import Device

# Varbinds asked per GETBULK: net-snmp snmpd's default maxGetbulkResponses. An agent whose answer
# would exceed its message size answers fewer rows (RFC 3416 4.2.3); a tooBig halves the ask.
MAX_VARBINDS = 100


class SnmpConfigError(CollectorError):
    """A device cannot be polled as configured (credentials, version policy, profile)."""


@dataclass(slots=True)
class DeviceSample:
    """The outcome of polling one device once."""

    device: Device
    ok: bool
    started: float  # wall clock (time.time())
    duration: float
    error_kind: str = ""
    error: str = ""
    scalars: dict[str, ber.Value] = field(default_factory=dict)  # scalar name -> value
    tables: dict[str, dict[str, dict[str, ber.Value]]] = field(default_factory=dict)
    requests: int = 0


def target_for(device: Device, *, allow_v2c: bool, timeout: float = 1.0,
               retries: int = 1) -> Target:
    """The SNMP target of a device, enforcing v3 authPriv unless v2c is allowed (lab)."""
    cred = device.snmp
    where = f"device {device.name}" + (f" ({device.source})" if device.source else "")
    if cred is None:
        raise SnmpConfigError(f"{where}: no snmp credentials (expected an `snmp:` block)")
    if cred.version in ("1", "2c"):
        if not allow_v2c:
            raise SnmpConfigError(f"{where}: SNMP v{cred.version} is allowed only where "
                                  "settings.allow_snmp_v2c is true (the lab); use v3 authPriv")
        if cred.community is None:
            raise SnmpConfigError(f"{where}: v{cred.version} without a community")
        return Target(device.address, cred.port, cred.version, cred.community.reveal(),
                      timeout=timeout, retries=retries)
    if cred.version != "3":
        raise SnmpConfigError(f"{where}: SNMP version {cred.version!r} unknown "
                              "(expected 3, 2c or 1)")
    if not (cred.user and cred.auth_key and cred.priv_key):
        raise SnmpConfigError(f"{where}: v3 needs user, auth and priv keys (authPriv)")
    try:
        user = UsmUser(cred.user, cred.auth_protocol or "SHA", cred.auth_key.reveal(),
                       cred.priv_protocol or "AES", cred.priv_key.reveal())
    except UsmError as exc:
        raise SnmpConfigError(f"{where}: {exc}") from exc
    return Target(device.address, cred.port, "3", user=user, context=cred.context,
                  timeout=timeout, retries=retries)


async def poll_once(client: SnmpClient, device: Device, profile: Profile,
                    budget: float) -> DeviceSample:
    """Poll one device within `budget` seconds; never raises for device faults."""
    started, t0 = time.time(), time.perf_counter()
    before = client.requests
    sample = DeviceSample(device, False, started, 0.0)
    try:
        await asyncio.wait_for(_collect(client, profile, sample), budget)
        sample.ok = True
    except TimeoutError:
        sample.error_kind, sample.error = "timeout", f"poll exceeded its {budget:g}s budget"
    except SnmpError as exc:
        sample.error_kind, sample.error = exc.kind, str(exc)
    except (ber.BerError, ValueError) as exc:
        sample.error_kind, sample.error = "decode", f"undecodable response: {exc}"
    sample.duration = time.perf_counter() - t0
    sample.requests = client.requests - before
    return sample


async def _collect(client: SnmpClient, profile: Profile, sample: DeviceSample) -> None:
    if profile.scalars:
        got = await client.get([s.oid for s in profile.scalars])
        sample.scalars = {s.name: got[s.oid] for s in profile.scalars if s.oid in got}
    cols: list[str] = []
    for t in profile.tables:
        cols += t.walk_oids()
    cols = list(dict.fromkeys(cols))
    if not cols:
        return
    walked = await client.bulk_walk(cols, max_repetitions=MAX_VARBINDS)
    for t in profile.tables:
        rows: dict[str, dict[str, ber.Value]] = {}
        for oid in t.walk_oids():
            for idx, val in walked.get(oid, {}).items():
                rows.setdefault(idx, {})[oid] = val
        sample.tables[t.name] = rows


class Poller:
    """Polls a fleet: each device has its own client (socket, engine state) and budget.

    At most `concurrency` answering devices are polled at once. A silent device cannot starve
    the others: one that has not answered anything within one request timeout gives its slot
    back and finishes its budget outside the limit (waiting costs no CPU), and a device that
    failed its last poll starts in a separate lane of its own `concurrency` slots (same rule),
    after the live ones. A live device therefore waits at most one request timeout per
    `concurrency` never-seen silent devices queued ahead of it in the first cycle, and not at
    all behind known-dead ones afterwards.
    """

    def __init__(self, devices: Iterable[Device], profiles: dict[str, Profile], *,
                 allow_v2c: bool, timeout: float = 1.0, retries: int = 1,
                 concurrency: int = 64, budget: float | None = None) -> None:
        if concurrency < 1:
            raise SnmpConfigError(f"concurrency {concurrency}: expected at least 1")
        self.profiles = profiles
        self.concurrency = concurrency
        self.timeout = timeout
        self.budget = budget if budget is not None else timeout * (retries + 1) * 3
        self.clients: dict[str, SnmpClient] = {}
        self.devices: dict[str, Device] = {}
        self.config_errors: dict[str, str] = {}
        self.suspects: set[str] = set()  # failed their last poll: polled in their own lane
        self.demoted = 0  # devices that gave their slot back in the last cycle (silent)
        for d in devices:
            self.devices[d.name] = d
            if d.profile not in profiles:
                self.config_errors[d.name] = (f"profile {d.profile!r} is not in the SNMP "
                                              f"profiles (known: {', '.join(sorted(profiles))})")
                continue
            try:
                self.clients[d.name] = SnmpClient(
                    target_for(d, allow_v2c=allow_v2c, timeout=timeout, retries=retries))
            except SnmpConfigError as exc:
                self.config_errors[d.name] = str(exc)

    async def _poll(self, name: str, sem: asyncio.Semaphore) -> DeviceSample:
        """Poll holding a slot while the device answers; give it back once it is silent."""
        client, d = self.clients[name], self.devices[name]
        await sem.acquire()
        held = True
        task = asyncio.ensure_future(poll_once(client, d, self.profiles[d.profile],
                                               self.budget))
        try:
            seen = client.responses
            while held and not task.done():
                await asyncio.wait({task}, timeout=self.timeout)
                if not task.done() and client.responses == seen:
                    sem.release()  # silent for a whole request timeout: let a live one in
                    held = False
                    self.demoted += 1
                seen = client.responses
            return await task
        finally:
            if held:
                sem.release()
            if not task.done():
                task.cancel()

    async def poll_all(self) -> list[DeviceSample]:
        """Poll every device once: live ones first, known-dead ones in their own lane."""
        live_sem = asyncio.Semaphore(self.concurrency)
        dead_sem = asyncio.Semaphore(self.concurrency)
        self.demoted = 0
        names = sorted(self.clients, key=lambda n: n in self.suspects)  # stable: live first
        results = list(await asyncio.gather(*(
            self._poll(n, dead_sem if n in self.suspects else live_sem) for n in names)))
        self.suspects = {s.device.name for s in results if not s.ok}
        now = time.time()
        for name, why in self.config_errors.items():
            results.append(DeviceSample(self.devices[name], False, now, 0.0, "config", why))
        return results

    def close(self) -> None:
        """Close every device socket."""
        for c in self.clients.values():
            c.close()
