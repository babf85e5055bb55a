"""Turn poll samples into Prometheus metrics: counters made monotonic across wraps and restarts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.poller import DeviceSample
from dcops.collectors.snmp.profiles import Profile, Table
from dcops.collectors.snmp.shard import Shard

PREFIX = "snmp_"
WRAP = {"counter32": 1 << 32, "counter64": 1 << 64}


@dataclass(slots=True)
class _CounterState:
    raw: int
    total: float
    uptime: float


class CounterTracker:
    """Keeps an ever-increasing total per series from raw device counters.

    A raw value below the previous one is a wrap when the agent's sysUpTime kept growing (add the
    counter's modulus) and an agent restart when sysUpTime went back (the new raw value is what
    was counted since the restart).
    """

    def __init__(self) -> None:
        self._state: dict[tuple[str, ...], _CounterState] = {}

    def update(self, key: tuple[str, ...], raw: int, kind: str, uptime: float | None) -> float:
        """Feed one raw reading, return the exposed total."""
        up = uptime if uptime is not None else -1.0
        st = self._state.get(key)
        if st is None:
            self._state[key] = _CounterState(raw, float(raw), up)
            return float(raw)
        restarted = uptime is not None and 0 <= up < st.uptime
        if restarted:
            delta = raw
        elif raw >= st.raw:
            delta = raw - st.raw
        else:
            delta = raw + WRAP.get(kind, 1 << 64) - st.raw
        st.raw, st.total, st.uptime = raw, st.total + delta, up
        return st.total

    def forget(self, device: str) -> None:
        """Drop the series of a device that left the inventory."""
        for k in [k for k in self._state if k[0] == device]:
            del self._state[k]


def _num(v: ber.Value | None) -> float | None:
    if v is None or not isinstance(v.value, int):
        return None
    return float(v.value)


def _label(v: ber.Value | None) -> str:
    if v is None:
        return ""
    if isinstance(v.value, bytes):
        return v.value.decode("utf-8", "replace")
    return "" if v.value is None else str(v.value)


@dataclass(slots=True)
class _Family:
    """One metric's samples; each keeps its own label names (tables may label differently)."""

    kind: str  # gauge | counter
    doc: str
    rows: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)

    def build(self, name: str) -> Metric:
        if self.kind == "counter":
            base = name.removesuffix("_total")
            fam = Metric(base, self.doc or base, "counter")
            sample = base + "_total"
        else:
            fam = Metric(name, self.doc or name, "gauge")
            sample = name
        for key, value in self.rows.items():
            fam.add_sample(sample, {k: v for k, v in key if v}, value)  # empty label = absent
        return fam


@dataclass(frozen=True, slots=True)
class _Adder:
    family: _Family
    names: tuple[str, ...]

    def add_metric(self, values: Sequence[str], value: float) -> None:
        key = tuple(zip(self.names, values, strict=True))
        self.family.rows.setdefault(key, value)  # a duplicate series keeps the first sample


@dataclass(slots=True)
class _Families:
    """Metric families of one exposition.

    Two tables may feed one metric with different labels (ENTITY-SENSOR rows carry
    entPhysicalIndex, CISCO-ENVMON rows ciscoEnvMonTemperatureStatusIndex, both
    snmp_temperature_celsius; a FortiGate CPU scalar has no index at all): each sample keeps its
    own labels instead of being zipped onto the first table's label names.
    """

    families: dict[str, _Family] = field(default_factory=dict)

    def _get(self, kind: str, name: str, doc: str, labels: Sequence[str]) -> _Adder:
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = _Family(kind, doc)
        elif fam.kind != kind:
            raise ValueError(f"metric {name} is both a gauge and a counter in the profiles")
        return _Adder(fam, tuple(labels))

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> _Adder:
        return self._get("gauge", name, doc, labels)

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> _Adder:
        return self._get("counter", name, doc, labels)

    def build(self) -> list[Metric]:
        return [f.build(n) for n, f in self.families.items()]


class SnmpMetrics(Collector):
    """The /metrics content: device series from the last poll plus the collector's own health."""

    def __init__(self, profiles: dict[str, Profile], site_kinds: dict[str, str] | None = None,
                 shard: Shard | None = None) -> None:
        self.profiles = profiles
        self.site_kinds = site_kinds or {}
        self.shard = shard
        self.counters = CounterTracker()
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.polls: dict[tuple[str, str], int] = defaultdict(int)
        self.last_success: dict[tuple[str, str], float] = {}
        self._snapshot: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        yield from self._snapshot

    def update(self, samples: Sequence[DeviceSample], cycle_seconds: float) -> None:
        """Rebuild the exposition from one poll cycle."""
        fam = _Families()
        base = ["site", "device"]
        up = fam.gauge("dcops_snmp_up", "1 if the last poll of the device succeeded", base)
        dur = fam.gauge("dcops_snmp_poll_duration_seconds", "Duration of the last poll", base)
        last = fam.gauge("dcops_snmp_last_success_timestamp_seconds",
                         "Unix time of the last successful poll", base)
        wan = fam.gauge("dcops_snmp_wan_uplink_info",
                        "WAN uplinks declared in the inventory (1 per uplink)",
                        [*base, "ifName", "site_kind"])
        for s in samples:
            d = s.device
            lv = [d.site, d.name]
            self.polls[(d.site, d.name)] += 1
            if s.ok:
                self.last_success[(d.site, d.name)] = s.started + s.duration
            else:
                self.errors[(d.site, d.name, s.error_kind or "unknown")] += 1
            up.add_metric(lv, 1.0 if s.ok else 0.0)
            dur.add_metric(lv, s.duration)
            if (d.site, d.name) in self.last_success:
                last.add_metric(lv, self.last_success[(d.site, d.name)])
            for ifname in d.wan_uplinks:
                wan.add_metric([*lv, ifname, self.site_kinds.get(d.site, "")], 1.0)
            if s.ok and d.profile in self.profiles:
                self._device(fam, s, self.profiles[d.profile])
        polls = fam.counter("dcops_snmp_polls", "Polls attempted per device", base)
        for (site, dev), n in sorted(self.polls.items()):
            polls.add_metric([site, dev], n)
        errs = fam.counter("dcops_snmp_errors", "Failed polls by kind (timeout, auth, "
                           "refused, decode, agent, config)", [*base, "kind"])
        for (site, dev, kind), n in sorted(self.errors.items()):
            errs.add_metric([site, dev, kind], n)
        fam.gauge("dcops_snmp_cycle_duration_seconds", "Duration of the last poll cycle",
                  []).add_metric([], cycle_seconds)
        fam.gauge("dcops_snmp_devices", "Devices in the poll list", []).add_metric(
            [], len(samples))
        if self.shard is not None:
            self._shard(fam, samples, self.shard)
        self._snapshot = fam.build()

    @staticmethod
    def _shard(fam: _Families, samples: Sequence[DeviceSample], shard: Shard) -> None:
        """This poller's shard, and one series per device it owns (the SnmpShardDown alert
        names them from Prometheus' last samples once the shard stops)."""
        sh = [str(shard.index), str(shard.count)]
        fam.gauge("dcops_snmp_shard_info", "This poller's shard (--shard I/N)",
                  ["shard", "shards"]).add_metric(sh, 1.0)
        owned = fam.gauge("dcops_snmp_shard_device_info", "Devices this shard polls (1 each)",
                          ["shard", "shards", "site", "device"])
        for s in samples:
            owned.add_metric([*sh, s.device.site, s.device.name], 1.0)

    def _device(self, fam: _Families, s: DeviceSample, prof: Profile) -> None:
        d = s.device
        lv = [d.site, d.name]
        uptime = _num(s.scalars.get("sysUpTime"))
        for sc in prof.scalars:
            v = s.scalars.get(sc.name)
            if sc.type == "string" or v is None or _num(v) is None:
                continue
            name = PREFIX + (sc.metric or sc.name)
            val = _num(v) or 0.0
            if sc.type == "gauge":
                fam.gauge(name, sc.help, ["site", "device"]).add_metric(lv, val * sc.scale)
            else:
                total = self.counters.update((d.name, sc.name), int(val), sc.type, uptime)
                fam.counter(name, sc.help, ["site", "device"]).add_metric(lv, total * sc.scale)
        info = fam.gauge(PREFIX + "device_info", "Device identity (sysName, sysDescr)",
                         ["site", "device", "device_class", "vendor", "sysName", "sysDescr"])
        info.add_metric([*lv, d.device_class, d.vendor, _label(s.scalars.get("sysName")),
                         _label(s.scalars.get("sysDescr"))[:120]], 1.0)
        for t in prof.tables:
            self._table(fam, s, t, uptime)

    def _table(self, fam: _Families, s: DeviceSample, t: Table, uptime: float | None) -> None:
        d = s.device
        names = ["site", "device", *(t.keep_labels or [t.index_label])]
        for idx, row in sorted(s.tables.get(t.name, {}).items()):
            if t.filter_oid and _num(row.get(t.filter_oid)) not in {float(v) for v in
                                                                   t.filter_values}:
                continue
            labels = {k: _label(row.get(oid)) for k, oid in t.labels.items()}
            for k, fb in t.label_fallback.items():
                if not labels.get(k):
                    labels[k] = labels.get(fb, "") or idx
            labels[t.index_label] = idx
            lv = [d.site, d.name, *(labels.get(k, "") for k in names[2:])]
            for c in t.columns:
                raw = _num(row.get(c.oid))
                if raw is None:
                    continue
                name = PREFIX + c.metric
                if c.type == "gauge":
                    val = raw * c.scale
                    if c.scale_column:
                        val *= _num(row.get(c.scale_column)) or 1.0
                    if c.si_scale_column:  # SensorDataScale: units(9) = 10^0, milli(8) ...
                        si = _num(row.get(c.si_scale_column))
                        val *= 10.0 ** (3 * (int(si) - 9)) if si and 1 <= si <= 17 else 1.0
                    if c.pow10_column:
                        val /= 10 ** (_num(row.get(c.pow10_column)) or 0.0)
                    fam.gauge(name, c.help, names).add_metric(lv, val)
                else:
                    total = self.counters.update((d.name, c.oid, idx), int(raw), c.type, uptime)
                    fam.counter(name, c.help, names).add_metric(lv, total * c.scale)
