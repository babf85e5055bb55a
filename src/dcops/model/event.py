"""One event model for every source (ECS-style dotted field names) and what detection emits."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Sigma's umbrella categories: an event of the key category is also one of these (SigmaHQ's
# `registry_event` rules cover Sysmon EventIDs 12, 13 and 14, whose own categories are below).
_TEXT_PARTS = frozenset({str, int})  # id parts whose str() is their content
_ORDER_MAX = 16**12 - 1  # 12 hex digits of milliseconds: until the year 10889

UMBRELLA_CATEGORIES: dict[str, tuple[str, ...]] = {
    "registry_add": ("registry_event",),
    "registry_delete": ("registry_event",),
    "registry_set": ("registry_event",),
    "registry_rename": ("registry_event",),
}


@dataclass(frozen=True, slots=True)
class LogSource:
    """The Sigma logsource an event belongs to (product, service, category).

    `also` lists further logsources the same event belongs to (a Wazuh alert about a Windows
    event is a `windows` event and also a `wazuh`/`alerts` one); `views()` adds the umbrella
    categories, so every rule for any of them sees the event.
    """

    product: str = ""
    service: str = ""
    category: str = ""
    also: tuple[LogSource, ...] = ()

    def views(self) -> tuple[tuple[str, str, str], ...]:
        """Every (product, service, category) this event can be matched as, lowercase."""
        out: list[tuple[str, str, str]] = []
        for ls in (self, *self.also):
            p, s, c = ls.product.lower(), ls.service.lower(), ls.category.lower()
            for cat in (c, *UMBRELLA_CATEGORIES.get(c, ())):
                if (p, s, cat) not in out:
                    out.append((p, s, cat))
        return tuple(out)

    def to_list(self) -> list[Any]:
        """JSON form: [product, service, category] then one such list per `also` logsource."""
        return [self.product, self.service, self.category, *(a.to_list()[:3] for a in self.also)]

    @classmethod
    def from_list(cls, v: list[Any]) -> LogSource:
        """The inverse of `to_list` (a plain three-item list too)."""
        p, s, c = ([str(x) for x in v[:3]] + ["", "", ""])[:3]
        return cls(p, s, c, tuple(cls.from_list(a[:3]) for a in v[3:] if isinstance(a, list)))


@dataclass(slots=True)
class Event:
    """A normalised security or network event.

    `fields` holds ECS-style dotted names (``source.ip``, ``user.name``, ``process.command_line``,
    ``event.action``) plus source-specific names Sigma rules use (``Image``, ``CommandLine``).
    `id` is stable for the same accepted input, so redelivery never creates a duplicate.
    """

    id: str
    timestamp: datetime
    source: str  # collector that accepted it: syslog, logfile, wazuh, snmp_trap, snmp_poll
    logsource: LogSource
    fields: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    parsed: bool = True  # False: kept as a raw event, counted, never dropped

    @staticmethod
    def make_id(*parts: str | bytes | int, prefix: str = "") -> str:
        """A stable event id from the parts that identify the accepted input (32 hex digits): a
        digest of each part's UTF-8 (text by its value, bytes as they are, anything else by its
        str()) followed by 0x1f.

        `prefix` (`order_prefix` of the receive time, when that time is one of the parts)
        replaces the hash's first digits: the ids of a live intake then grow with time and the
        spool's unique index takes them at its end instead of scattering every commit over its
        pages (the syslog spool writer's CPU per message fell from 9 to 6 us).
        """
        try:  # the usual case, text only, at once (a str subclass's text is its value)
            data = ("\x1f".join(parts).encode("utf-8", "surrogatepass")  # type: ignore[arg-type]
                    + b"\x1f") if parts else b""
        except TypeError:  # bytes or int among them
            data = Event._id_data(parts)
        h = hashlib.blake2b(data, digest_size=16).hexdigest()
        return prefix + h[len(prefix):] if prefix else h

    @staticmethod
    def _id_data(parts: tuple[str | bytes | int, ...]) -> bytes:
        """`make_id`'s input when a part is not text: the same bytes part by part."""
        if _TEXT_PARTS.issuperset(map(type, parts)):
            return ("\x1f".join(map(str, parts)) + "\x1f").encode("utf-8", "surrogatepass")
        # each part's UTF-8 (bytes as they are, text by its value) and 0x1f
        return b"".join(
            (p if isinstance(p, bytes) else
             (str.__str__(p) if isinstance(p, str) else str(p)).encode(
                 "utf-8", "surrogatepass")) + b"\x1f"
            for p in parts)

    @staticmethod
    def order_prefix(t: float) -> str:
        """12 hex digits of milliseconds since the epoch (until the year 10889): an id prefix
        that sorts by `t`."""
        return f"{min(max(int(t * 1000), 0), _ORDER_MAX):012x}"


@dataclass(frozen=True, slots=True)
class Detection:
    """A rule matched: what the detection engine hands to the alert store."""

    rule_id: str
    rule_title: str
    severity: str  # informational, low, medium, high, critical
    timestamp: datetime
    event_ids: tuple[str, ...]
    key: str = ""  # dedup key inside the rule: host, source address, group-by values
    host: str = ""
    site: str = ""
    system: str = ""
    tags: tuple[str, ...] = ()  # ATT&CK tags of the rule (attack.t1110, attack.credential_access)
    fields: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def id(self) -> str:
        """Stable id: the same rule firing on the same events is the same detection."""
        return Event.make_id(self.rule_id, self.key, *sorted(self.event_ids))


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_JSON_DEPTH = 64  # orjson refuses deeper nesting; deeper values are kept as their repr


def json_safe(value: Any, _depth: int = 0) -> Any:  # noqa: PLR0911 - one return per type
    """`value` in a form every store can hold, faithfully (never an exception at write time).

    Integers outside 64 bits become their decimal string, non-finite floats their name, bytes
    their hex, strings with lone surrogates get them replaced (U+FFFD), keys become strings, and
    anything deeper than MAX_JSON_DEPTH or of another type becomes its repr.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if _depth >= MAX_JSON_DEPTH:  # its repr could recurse as deep: name what was cut
        return f"<{type(value).__name__} nested deeper than {MAX_JSON_DEPTH} levels>"
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return json_safe(str(value))
