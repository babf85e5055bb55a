"""Subjects of events (`<prefix>.events.<site>.<source>`) and KV keys for arbitrary names."""

from __future__ import annotations

import re
import unicodedata

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


def event_subject(prefix: str, event: Event) -> str:
    """`<prefix>.events.<site>.<source>`: one subject per site and collector."""
    return f"{prefix}.events.{site_of(event)}.{token(event.source)}"


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
