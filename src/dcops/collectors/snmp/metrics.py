"""Turn poll samples into Prometheus metrics: counters made monotonic across wraps and restarts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.poller import DeviceSample
from dcops.collectors.snmp.profiles import Profile, Table
from dcops.collectors.snmp.shard import Shard

PREFIX = "snmp_"
_FMT: Callable[[float], str] = floatToGoString  # the float form prometheus_client writes
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


def _esc(v: str) -> str:
    """A label value as the text format writes it (prometheus_client's escaping)."""
    if "\\" in v or "\n" in v or '"' in v:
        return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return v


class _Labeller:
    """Writes the label part of a series (`a="x",b="y"`) for one fixed list of label names.

    As prometheus_client writes it: names sorted, values escaped, an empty value left out.
    """

    __slots__ = ("names", "order")

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.order = sorted(range(len(self.names)), key=lambda i: self.names[i])

    def __call__(self, values: Sequence[str]) -> str:
        names = self.names
        return ",".join([f'{names[i]}="{_esc(values[i])}"' for i in self.order if values[i]])


@dataclass(slots=True)
class _Family:
    """One metric's samples, keyed by their label text (a duplicate series keeps the first)."""

    kind: str  # gauge | counter
    doc: str
    rows: dict[str, float] = field(default_factory=dict)

    def text(self, name: str, out: list[str]) -> None:
        if self.kind == "counter":
            base = name.removesuffix("_total")
            doc, sample = self.doc or base, base + "_total"
        else:
            doc, sample = self.doc or name, name
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {sample} {doc}\n# TYPE {sample} {self.kind}\n")
        fmt = _FMT
        out.extend([f"{sample}{{{k}}} {fmt(v)}\n" if k else f"{sample} {fmt(v)}\n"
                    for k, v in self.rows.items()])


@dataclass(slots=True)
class _Families:
    """Metric families of one exposition, in the order they were first fed.

    Two tables may feed one metric with different labels (ENTITY-SENSOR rows carry
    entPhysicalIndex, CISCO-ENVMON rows ciscoEnvMonTemperatureStatusIndex, both
    snmp_temperature_celsius; a FortiGate CPU scalar has no index at all): each sample keeps its
    own labels.
    """

    families: dict[str, _Family] = field(default_factory=dict)

    def rows(self, kind: str, name: str, doc: str) -> dict[str, float]:
        """The samples of one family (label text -> value), created on first use."""
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = _Family(kind, doc)
        elif fam.kind != kind:
            raise ValueError(f"metric {name} is both a gauge and a counter in the profiles")
        return fam.rows

    def text(self) -> bytes:
        out: list[str] = []
        for name, fam in self.families.items():
            if fam.rows:  # a column no device answered for: no family at all
                fam.text(name, out)
        return "".join(out).encode()


_BASE = _Labeller(["site", "device"])


class SnmpMetrics(Collector):
    """The /metrics content: device series from the last poll plus the collector's own health.

    `update()` writes the exposition text (Prometheus text format 0.0.4, byte for byte what
    prometheus_client writes for the same samples) once per cycle; `text()` serves it. A
    registry that wants Metric objects gets them from `collect()`, parsed back from that text.
    """

    def __init__(self, profiles: dict[str, Profile], site_kinds: dict[str, str] | None = None,
                 shard: Shard | None = None) -> None:
        self.profiles = profiles
        self.site_kinds = site_kinds or {}
        self.shard = shard
        self.counters = CounterTracker()
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.polls: dict[tuple[str, str], int] = defaultdict(int)
        self.last_success: dict[tuple[str, str], float] = {}
        self._text = b""
        self._parsed: list[Metric] | None = []
        self._labellers: dict[tuple[str, ...], _Labeller] = {}

    def text(self) -> bytes:
        """The exposition of the last cycle (what MetricsServer serves for this collector)."""
        return self._text

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol: the same series, parsed from text()."""
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = list(text_string_to_metric_families(self._text.decode()))
        yield from parsed

    def update(self, samples: Sequence[DeviceSample], cycle_seconds: float) -> None:
        """Rebuild the exposition from one poll cycle."""
        fam = _Families()
        up = fam.rows("gauge", "dcops_snmp_up", "1 if the last poll of the device succeeded")
        dur = fam.rows("gauge", "dcops_snmp_poll_duration_seconds", "Duration of the last poll")
        last = fam.rows("gauge", "dcops_snmp_last_success_timestamp_seconds",
                        "Unix time of the last successful poll")
        wan = fam.rows("gauge", "dcops_snmp_wan_uplink_info",
                       "WAN uplinks declared in the inventory (1 per uplink)")
        wan_lab = self._labeller(("site", "device", "ifName", "site_kind"))
        for s in samples:
            d = s.device
            key = (d.site, d.name)
            lv = _BASE(key)
            self.polls[key] += 1
            if s.ok:
                self.last_success[key] = s.started + s.duration
            else:
                self.errors[(d.site, d.name, s.error_kind or "unknown")] += 1
            up.setdefault(lv, 1.0 if s.ok else 0.0)
            dur.setdefault(lv, s.duration)
            if key in self.last_success:
                last.setdefault(lv, self.last_success[key])
            for ifname in d.wan_uplinks:
                wan.setdefault(wan_lab((d.site, d.name, ifname,
                                        self.site_kinds.get(d.site, ""))), 1.0)
            if s.ok and d.profile in self.profiles:
                self._device(fam, s, self.profiles[d.profile], lv)
        polls = fam.rows("counter", "dcops_snmp_polls", "Polls attempted per device")
        for (site, dev), n in sorted(self.polls.items()):
            polls.setdefault(_BASE((site, dev)), n)
        errs = fam.rows("counter", "dcops_snmp_errors", "Failed polls by kind (timeout, auth, "
                        "refused, decode, agent, config)")
        err_lab = self._labeller(("site", "device", "kind"))
        for k, n in sorted(self.errors.items()):
            errs.setdefault(err_lab(k), n)
        fam.rows("gauge", "dcops_snmp_cycle_duration_seconds",
                 "Duration of the last poll cycle")[""] = cycle_seconds
        fam.rows("gauge", "dcops_snmp_devices", "Devices in the poll list")[""] = len(samples)
        if self.shard is not None:
            self._shard(fam, samples, self.shard)
        self._text = fam.text()
        self._parsed = None

    def _labeller(self, names: tuple[str, ...]) -> _Labeller:
        lab = self._labellers.get(names)
        if lab is None:
            lab = self._labellers[names] = _Labeller(names)
        return lab

    def _shard(self, fam: _Families, samples: Sequence[DeviceSample], shard: Shard) -> None:
        """This poller's shard, and one series per device it owns (the SnmpShardDown alert
        names them from Prometheus' last samples once the shard stops)."""
        sh = (str(shard.index), str(shard.count))
        fam.rows("gauge", "dcops_snmp_shard_info", "This poller's shard (--shard I/N)").setdefault(
            self._labeller(("shard", "shards"))(sh), 1.0)
        owned = fam.rows("gauge", "dcops_snmp_shard_device_info",
                         "Devices this shard polls (1 each)")
        lab = self._labeller(("shard", "shards", "site", "device"))
        for s in samples:
            owned.setdefault(lab((*sh, s.device.site, s.device.name)), 1.0)

    def _device(self, fam: _Families, s: DeviceSample, prof: Profile, lv: str) -> None:
        d = s.device
        uptime = _num(s.scalars.get("sysUpTime"))
        for sc in prof.scalars:
            v = s.scalars.get(sc.name)
            if sc.type == "string" or v is None or _num(v) is None:
                continue
            name = PREFIX + (sc.metric or sc.name)
            val = _num(v) or 0.0
            if sc.type == "gauge":
                fam.rows("gauge", name, sc.help).setdefault(lv, val * sc.scale)
            else:
                total = self.counters.update((d.name, sc.name), int(val), sc.type, uptime)
                fam.rows("counter", name, sc.help).setdefault(lv, total * sc.scale)
        info = self._labeller(("site", "device", "device_class", "vendor", "sysName",
                               "sysDescr"))
        fam.rows("gauge", PREFIX + "device_info", "Device identity (sysName, sysDescr)"
                 ).setdefault(info((d.site, d.name, d.device_class, d.vendor,
                                    _label(s.scalars.get("sysName")),
                                    _label(s.scalars.get("sysDescr"))[:120])), 1.0)
        for t in prof.tables:
            self._table(fam, s, t, uptime)

    def _table(self, fam: _Families, s: DeviceSample, t: Table, uptime: float | None) -> None:
        d = s.device
        extra = t.keep_labels or (t.index_label,)
        lab = self._labeller(("site", "device", *extra))
        cols = [(c, fam.rows("gauge" if c.type == "gauge" else "counter", PREFIX + c.metric,
                             c.help)) for c in t.columns]
        counters = self.counters
        wanted = {float(v) for v in t.filter_values}
        for idx, row in sorted(s.tables.get(t.name, {}).items()):
            if t.filter_oid and _num(row.get(t.filter_oid)) not in wanted:
                continue
            labels = {k: _label(row.get(oid)) for k, oid in t.labels.items()}
            for k, fb in t.label_fallback.items():
                if not labels.get(k):
                    labels[k] = labels.get(fb, "") or idx
            labels[t.index_label] = idx
            lv = lab((d.site, d.name, *(labels.get(k, "") for k in extra)))
            for c, rows in cols:
                v = row.get(c.oid)
                if v is None or not isinstance(v.value, int):
                    continue
                raw = float(v.value)
                if c.type == "gauge":
                    val = raw * c.scale
                    if c.scale_column:
                        val *= _num(row.get(c.scale_column)) or 1.0
                    if c.si_scale_column:  # SensorDataScale: units(9) = 10^0, milli(8) ...
                        si = _num(row.get(c.si_scale_column))
                        val *= 10.0 ** (3 * (int(si) - 9)) if si and 1 <= si <= 17 else 1.0
                    if c.pow10_column:
                        val /= 10 ** (_num(row.get(c.pow10_column)) or 0.0)
                    rows.setdefault(lv, val)
                else:
                    total = counters.update((d.name, c.oid, idx), int(raw), c.type, uptime)
                    rows.setdefault(lv, total * c.scale)
