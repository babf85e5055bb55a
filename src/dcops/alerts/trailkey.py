"""HMAC keys of the audit trail, kept outside the database, and the two record hash schemes.

A key file is JSON (``{"kind": "dcops.trail.keys", "current": ID, "keys": {ID: {"secret": HEX,
"created": ISO}}}``), created with mode 0600 and refused when others can read or write it. Old keys
stay in the file after a rotation: verification needs them. The environment form (read by the CLI
only and passed in as text) is ``ID:HEX[,ID:HEX...]``, the last key current; it cannot be rotated.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcops.errors import AlertStoreError, ConfigError

KIND = "dcops.trail.keys"
SCHEME = "dcops.trail.v2"  # keyed records: HMAC-SHA-256 over a JSON array of the fields
SECRET_BYTES = 32


def legacy_hash(prev_hash: str, *, seq: int, ts: str, actor: str, action: str, target: str,
                detail_text: str) -> str:
    """The old unkeyed scheme (SHA-256 over \\x1f-joined fields): only to check legacy records."""
    payload = "\x1f".join([prev_hash, str(seq), ts, actor, action, target, detail_text])
    return hashlib.sha256(payload.encode()).hexdigest()


def keyed_hash(secret: bytes, *, key_id: str, prev_hash: str, seq: int, ts: str, actor: str,
               action: str, target: str, detail_text: str) -> str:
    """HMAC-SHA-256 over every field, the link to the previous record and the key id."""
    msg = json.dumps([SCHEME, key_id, prev_hash, seq, ts, actor, action, target, detail_text],
                     ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class TrailKey:
    """One HMAC key: its id (stored with each record), secret and creation time."""

    key_id: str
    secret: bytes
    created: str = ""


def new_key() -> TrailKey:
    """A fresh random key whose id says when it was made (``20261202-1a2b3c4d``)."""
    at = datetime.now(UTC)
    return TrailKey(f"{at:%Y%m%d}-{secrets.token_hex(4)}", secrets.token_bytes(SECRET_BYTES),
                    at.strftime("%Y-%m-%dT%H:%M:%SZ"))


def check_mode(path: Path) -> None:
    """Refuse a key file that others may read or anyone but its owner may write (like ssh)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o027:
        raise ConfigError(f"trail key file is accessible to others (mode {mode:04o}); expected "
                          f"0600 (or 0640 for a service group): chmod 600 {path}", file=str(path))


class Keyring:
    """The trail keys known to this process; `current` signs the first keyed record."""

    def __init__(self, keys: dict[str, TrailKey], current: str, source: str,
                 path: Path | None = None) -> None:
        if current not in keys:
            raise ConfigError(f"current key {current!r} is not among the keys", file=source,
                              key="current")
        self.keys = dict(keys)
        self.current_id = current
        self.source = source
        self.path = path

    @property
    def current(self) -> TrailKey:
        """The key named current."""
        return self.keys[self.current_id]

    def get(self, key_id: str) -> TrailKey | None:
        """The key with this id, or None."""
        return self.keys.get(key_id)

    @classmethod
    def ephemeral(cls) -> Keyring:
        """A key held in memory only (in-memory SQLite stores: nothing outlives the process)."""
        k = new_key()
        return cls({k.key_id: k}, k.key_id, "(in memory)")

    @classmethod
    def from_text(cls, text: str, source: str = "DCOPS_TRAIL_KEY") -> Keyring:
        """Keys from ``ID:HEX[,ID:HEX...]`` (the environment form); the last one is current."""
        keys: dict[str, TrailKey] = {}
        for n, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
            kid, sep, hexs = item.partition(":")
            try:
                secret = bytes.fromhex(hexs)
            except ValueError:
                secret = b""
            if not sep or not kid or len(secret) < 16:
                raise ConfigError(f"item {n + 1}: expected KEY_ID:HEX with at least 16 bytes of "
                                  "key", file=source)
            keys[kid] = TrailKey(kid, secret)
        if not keys:
            raise ConfigError("no key given (expected KEY_ID:HEX)", file=source)
        return cls(keys, list(keys)[-1], source)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read a key file (its mode is checked first)."""
        check_mode(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the trail key file: {exc}", file=str(path)) from exc
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise ConfigError(f"not a trail key file (expected kind {KIND!r})", file=str(path),
                              key="kind")
        keys: dict[str, TrailKey] = {}
        raw = doc.get("keys")
        if not isinstance(raw, dict) or not raw:
            raise ConfigError("expected a non-empty object of keys", file=str(path), key="keys")
        for kid, entry in raw.items():
            try:
                keys[kid] = TrailKey(kid, bytes.fromhex(entry["secret"]), entry.get("created", ""))
            except (TypeError, KeyError, ValueError) as exc:
                raise ConfigError("expected {secret: HEX, created: ISO}", file=str(path),
                                  key=f"keys.{kid}") from exc
        return cls(keys, str(doc.get("current", "")), str(path), path)

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """Read the key file, or create it (mode 0600, one new key) when it does not exist."""
        if not path.exists():
            k = new_key()
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = _write_private(path, _document({k.key_id: k}, k.key_id))
            try:
                os.link(tmp, path)  # atomic create-if-absent: a concurrent creator wins cleanly
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls.load(path)

    def add_key(self) -> TrailKey:
        """Step 1 of a rotation: a new key is saved in the file (the current one is unchanged)."""
        k = new_key()
        with self._locked_update() as doc:
            doc["keys"][k.key_id] = {"secret": k.secret.hex(), "created": k.created}
        self.keys[k.key_id] = k
        return k

    def set_current(self, key_id: str) -> None:
        """Step 3 of a rotation, after the trail recorded it: the file names the new key current."""
        with self._locked_update() as doc:
            if key_id not in doc["keys"]:
                raise AlertStoreError(f"{self.source}: key {key_id} is not in the key file")
            doc["current"] = key_id
        self.current_id = key_id

    @contextlib.contextmanager
    def _locked_update(self) -> Iterator[dict[str, Any]]:
        if self.path is None:
            raise AlertStoreError(f"keys from {self.source} cannot be rotated in place: add the "
                                  "new key to it (ID:HEX, last is current) or use a key file")
        path = self.path
        lock = path.with_name(path.name + ".lock")  # a separate file: the key file is replaced
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            doc = json.loads(path.read_text(encoding="utf-8"))
            yield doc
            tmp = _write_private(path, doc)
            os.replace(tmp, path)


def _document(keys: dict[str, TrailKey], current: str) -> dict[str, Any]:
    return {"kind": KIND, "current": current,
            "keys": {k.key_id: {"secret": k.secret.hex(), "created": k.created}
                     for k in keys.values()}}


def _write_private(path: Path, doc: dict[str, Any]) -> Path:
    """Write `doc` to a new 0600 file beside `path` (fsynced); return its name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return tmp
