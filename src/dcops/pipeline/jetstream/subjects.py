"""Subjects of events and KV keys for arbitrary names.

Events go to `<prefix>.events.<site>.<source>` on a bus with one partition (the default), and to
`<prefix>.events.<site>.<source>.p<k>` on a bus with `partitions=S` (S > 1), where
`k = crc32(host) % S` and host is `dcops.detect.engine.event_host` (the host the detections
carry; an event with no host field is placed by its id). Partition p of a worker group reads
only `<prefix>.events.*.*.p<p>`: every event of one host reaches one partition, in stream order.
"""

from __future__ import annotations

import re
import unicodedata
import zlib

from dcops.detect.engine import event_host
from dcops.model.event import Event

SITE_FIELDS = ("site.name", "observer.site", "site")  # first one present names the site
DEFAULT_SITE = "default"
MAX_TOKEN = 64
_NOT_TOKEN = re.compile(r"[^a-z0-9_-]+")
_KV_SAFE = re.compile(r"[A-Za-z0-9_/-]")


def token(value: object) -> str:
    """A subject token from any text: ASCII-folded (Đồng Nai -> dong_nai), [a-z0-9_-], <= 64."""
    text = str(value or "").replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = _NOT_TOKEN.sub("_", text.lower()).strip("_")[:MAX_TOKEN]
    return out or DEFAULT_SITE


def site_of(event: Event) -> str:
    """The event's site token (from site.name, observer.site or site), else `default`."""
    for name in SITE_FIELDS:
        value = event.fields.get(name)
        if isinstance(value, str) and value.strip():
            return token(value)
    return DEFAULT_SITE


def partition_of(event: Event, partitions: int) -> int:
    """The partition of an event: crc32(its host) % partitions (no host: crc32(its id))."""
    if partitions <= 1:
        return 0
    key = event_host(event.fields) or str(event.id)
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def event_subject(prefix: str, event: Event, partitions: int = 1) -> str:
    """`<prefix>.events.<site>.<source>` (one partition), else with `.p<k>` (see module doc)."""
    base = f"{prefix}.events.{site_of(event)}.{token(event.source)}"
    if partitions <= 1:
        return base
    return f"{base}.p{partition_of(event, partitions)}"


def partition_filter(prefix: str, partition: int, partitions: int) -> str:
    """The subject filter partition `partition` of `partitions` reads."""
    if partitions <= 1:
        return f"{prefix}.events.*.*"
    return f"{prefix}.events.*.*.p{partition}"


def read_by_partitions(prefix: str, subject: str, partitions: int) -> bool:
    """True when one of the `partitions` filters matches `subject` (else no partition reads
    it: a collector with another `partitions=`, or an event from before partitioning)."""
    parts = subject.split(".")
    if len(parts) < 2 or parts[0] != prefix or parts[1] != "events":
        return False
    if partitions <= 1:
        return len(parts) == 4
    if len(parts) != 5 or not parts[4].startswith("p"):
        return False
    k = parts[4][1:]
    return k.isdigit() and str(int(k)) == k and int(k) < partitions


def deadletter_subject(prefix: str, source: str) -> str:
    """`<prefix>.deadletters.<source>`."""
    return f"{prefix}.deadletters.{token(source)}"


def kv_key(name: str) -> str:
    """A KV key for any name, injectively: [A-Za-z0-9_/-] kept, every other byte as =XX."""
    if not name:
        return "="
    out = []
    for ch in name:
        if _KV_SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def kv_name(key: str) -> str:
    """The name a `kv_key` came from."""
    if key == "=":
        return ""
    raw = bytearray()
    i = 0
    while i < len(key):
        if key[i] == "=":
            raw.append(int(key[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(key[i].encode("ascii"))
            i += 1
    return raw.decode("utf-8")
