"""Traps as events, flapping suppression and the receiver's own counters."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dcops.collectors.snmp import ber
from dcops.collectors.snmp.trapmap import UNKNOWN, TrapType
from dcops.model.event import INT64_MAX, INT64_MIN, Event, LogSource

TRAP = LogSource(product="snmp", service="trap", category="network")
IF_INDEX = "1.3.6.1.2.1.2.2.1.1."
IF_DESCR = "1.3.6.1.2.1.2.2.1.2."
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1."
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7."
IF_OPER = "1.3.6.1.2.1.2.2.1.8."
MESSAGE_NAME = 200  # characters of an interface name quoted in `message` (varbinds keep it all)
FLAP_KEYS = 10_000  # interfaces the flapping tracker remembers (least recently seen evicted)
FLAP_KEY_CHARS = 200  # characters of an interface id/name used as a flapping key


def value_json(v: ber.Value) -> Any:
    """A JSON-friendly rendering of a varbind value."""
    if v.tag == ber.IPADDRESS and isinstance(v.value, bytes) and len(v.value) == 4:
        return str(ipaddress.IPv4Address(v.value))
    if isinstance(v.value, bytes):
        try:
            text = v.value.decode("utf-8")
        except UnicodeDecodeError:
            return v.value.hex()
        return text if text.isprintable() else v.value.hex()
    if isinstance(v.value, int) and not INT64_MIN <= v.value <= INT64_MAX:
        return str(v.value)  # faithful: stores and JSON readers hold 64-bit integers at most
    if v.tag in ber.EXCEPTIONS:
        return {ber.NO_SUCH_OBJECT: "noSuchObject", ber.NO_SUCH_INSTANCE: "noSuchInstance",
                ber.END_OF_MIB_VIEW: "endOfMibView"}[v.tag]
    return v.value


def trap_event(data: bytes, addr: tuple[str, int], version: str, user: str, pdu: ber.Pdu,
               trap_map: dict[str, TrapType], device: str) -> Event:
    """Build the event of one accepted notification."""
    vbs = dict(pdu.varbinds)
    oid_v = vbs.get(ber.SNMP_TRAP_OID_0)
    trap_oid = str(oid_v.value) if oid_v is not None and oid_v.tag == ber.OID else ""
    tt = trap_map.get(trap_oid, UNKNOWN)
    agent = vbs.get(ber.SNMP_TRAP_ADDRESS_0)
    fields: dict[str, Any] = {
        "event.kind": "alert" if tt.severity == "critical" else "event",
        "event.category": "network", "event.type": "info", "event.module": "snmp",
        "event.action": tt.action, "event.severity_label": tt.severity,
        "source.ip": addr[0], "source.port": addr[1],
        "observer.name": device, "host.name": device or addr[0],
        "snmp.version": version, "snmp.trap.oid": trap_oid, "snmp.trap.name": tt.name,
        "snmp.trap.link": tt.link, "snmp.pdu": {ber.TRAP_V1: "trap-v1", ber.TRAP_V2: "trap",
                                                 ber.INFORM: "inform"}.get(pdu.pdu_type, ""),
        "snmp.varbinds": {o: value_json(v) for o, v in pdu.varbinds},
    }
    if user:
        fields["user.name"] = user
    if agent is not None:
        fields["snmp.agent_address"] = value_json(agent)
    for oid, v in pdu.varbinds:
        if oid.startswith(IF_INDEX):
            fields["interface.id"] = str(value_json(v))
        elif oid.startswith(IF_NAME) or (oid.startswith(IF_DESCR)
                                         and "interface.name" not in fields):
            fields["interface.name"] = value_json(v)
        elif oid.startswith(IF_OPER):
            fields["interface.oper_status"] = value_json(v)
        elif oid.startswith(IF_ADMIN):
            fields["interface.admin_status"] = value_json(v)
    if "interface.id" not in fields:
        for oid, _ in pdu.varbinds:
            if oid.startswith((IF_DESCR, IF_NAME, IF_OPER, IF_ADMIN)):
                fields["interface.id"] = oid.rsplit(".", 1)[1]
                break
    what = tt.description or tt.name
    where = device or addr[0]
    ifn = str(fields.get("interface.name") or fields.get("interface.id") or "")[:MESSAGE_NAME]
    fields["message"] = f"{tt.name} from {where}" + (f" ({ifn})" if ifn else "") + f": {what}"
    return Event(id=Event.make_id("snmp_trap", addr[0], addr[1], data),
                 timestamp=datetime.now(UTC), source="snmp_trap", logsource=TRAP,
                 fields=fields, raw=data.hex())


class FlapTracker:
    """More than `threshold` link traps for one interface within `window` seconds is flapping.

    Bounded: at most `max_keys` interfaces (least recently seen evicted, counted in `evictions`),
    at most threshold + 1 timestamps each, keys cut at FLAP_KEY_CHARS characters.
    """

    def __init__(self, window: float, threshold: int, max_keys: int = FLAP_KEYS) -> None:
        self.window = window
        self.threshold = threshold
        self.max_keys = max_keys
        self.seen: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self.flapping: set[tuple[str, str]] = set()
        self.evictions = 0

    def observe(self, key: tuple[str, str], now: float) -> str:
        """'pass' (emit), 'start' (emit one flapping event) or 'suppress'."""
        key = (key[0][:FLAP_KEY_CHARS], key[1][:FLAP_KEY_CHARS])
        q = self.seen.get(key)
        if q is None:
            q = self.seen[key] = deque(maxlen=self.threshold + 1)
            while len(self.seen) > self.max_keys:
                old, _ = self.seen.popitem(last=False)
                self.flapping.discard(old)
                self.evictions += 1
        else:
            self.seen.move_to_end(key)
        q.append(now)
        while q and q[0] < now - self.window:
            q.popleft()
        if len(q) > self.threshold:
            if key in self.flapping:
                return "suppress"
            self.flapping.add(key)
            return "start"
        self.flapping.discard(key)
        return "pass"


class TrapStats(Collector):
    """Receiver counters for /metrics: received by version, refused, malformed, suppressed."""

    def __init__(self, rcvbuf: int, flaps: FlapTracker | None = None) -> None:
        self.rcvbuf = rcvbuf
        self.flaps = flaps
        self.by_version: dict[tuple[str, str], int] = defaultdict(int)
        self.counts: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)

    @property
    def discoveries(self) -> int:
        """v3 discovery reports sent (the usmStatsUnknownEngineIDs value)."""
        return self.counts["v3_discovery"]

    def received(self, version: str, inform: bool) -> None:
        """Count an accepted notification."""
        self.by_version[(version, "inform" if inform else "trap")] += 1

    def count(self, what: str) -> None:
        """Count one outcome (malformed, auth_failure, suppressed_flapping, events, ...)."""
        self.counts[what] += 1

    def refuse(self, reason: str) -> None:
        """Count a refused packet by reason; all refusals also count as `auth_failure`."""
        self.refused[reason] += 1
        self.counts["auth_failure"] += 1

    @property
    def total(self) -> int:
        """Notifications accepted."""
        return sum(self.by_version.values())

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        rx = CounterMetricFamily("dcops_snmp_traps_received", "Notifications accepted",
                                 labels=["version", "pdu"])
        for (v, p), n in sorted(self.by_version.items()):
            rx.add_metric([v, p], n)
        yield rx
        oc = CounterMetricFamily("dcops_snmp_trap_packets", "Packets by outcome (malformed, "
                                 "too_large, auth_failure, unexpected_pdu, suppressed_flapping, "
                                 "events, queue_full, inform_acked, v3_discovery, ...)",
                                 labels=["outcome"])
        for k, n in sorted(self.counts.items()):
            oc.add_metric([k], n)
        yield oc
        rf = CounterMetricFamily("dcops_snmp_trap_refused", "Packets refused by reason "
                                 "(unknown_community, v1v2c_not_allowed, unknown_user, "
                                 "security_level, usm, engine_id)", labels=["reason"])
        for k, n in sorted(self.refused.items()):
            rf.add_metric([k], n)
        yield rf
        g = GaugeMetricFamily("dcops_snmp_trap_socket_rcvbuf_bytes", "Trap socket receive "
                              "buffer granted by the kernel")
        g.add_metric([], self.rcvbuf)
        yield g
        if self.flaps is not None:
            fk = GaugeMetricFamily("dcops_snmp_trap_flap_interfaces", "Interfaces the flapping "
                                   "tracker remembers (bounded, least recently seen evicted)")
            fk.add_metric([], len(self.flaps.seen))
            yield fk
            fe = CounterMetricFamily("dcops_snmp_trap_flap_evictions", "Interfaces evicted from "
                                     "the full flapping tracker")
            fe.add_metric([], self.flaps.evictions)
            yield fe
