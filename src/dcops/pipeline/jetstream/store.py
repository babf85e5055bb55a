"""Consumer cursors and checkpoints (JetStream KV) and consumer state (JetStream object store).

A cursor is `{"seq": <stream sequence>, "ts": <newest event time acked, epoch seconds>,
"owner": <claim, optional>}` under the consumer's key; it only moves forward (compare-and-set on
the key's revision), so two workers acking out of order can never move it back. A claimed
cursor moves only for an ack naming its owner (worker groups' fencing, dcops.pipeline.workers).
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import (
    APIError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    ObjectDeletedError,
    ObjectNotFoundError,
)
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from dcops.pipeline.bus import CursorTakenError
from dcops.pipeline.jetstream.subjects import kv_key

_POS = struct.Struct(">Q")  # a state object starts with its position (8 bytes, big endian)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A consumer's acked position and the newest event time it acked."""

    seq: int = 0
    ts: float | None = None
    revision: int | None = None  # KV revision (None: no key yet)
    owner: str = ""  # who claimed it ("" : no claim)


async def read_cursor(kv: KeyValue, consumer: str) -> Cursor:
    """The stored cursor (position 0 when the consumer is new)."""
    try:
        entry = await kv.get(kv_key(consumer))
    except KeyNotFoundError:
        return Cursor()
    if entry.value is None:
        return Cursor(revision=entry.revision)
    doc = json.loads(entry.value)
    ts = doc.get("ts")
    return Cursor(int(doc["seq"]), float(ts) if ts is not None else None, entry.revision,
                  str(doc.get("owner") or ""))


def _cursor_value(seq: int, ts: float | None, owner: str) -> bytes:
    doc: dict[str, object] = {"seq": seq, "ts": ts}
    if owner:
        doc["owner"] = owner
    return json.dumps(doc).encode()


async def advance_cursor(
    kv: KeyValue, js: JetStreamContext, subject_prefix: str, consumer: str, seq: int,
    newest_ts: Callable[[int, int], Awaitable[float | None]], owner: str | None = None,
) -> None:
    """Move the cursor to `seq` unless it is already there or beyond (compare-and-set).

    `newest_ts(old, new)` gives the newest event time in (old, new]; it is kept with the cursor.
    With `owner`, the cursor must be claimed by `owner` (CursorTakenError otherwise), checked in
    the same compare-and-set that moves it.
    """
    key = kv_key(consumer)
    while True:
        cur = await read_cursor(kv, consumer)
        if owner is not None and cur.owner != owner:
            raise CursorTakenError(consumer, cur.owner)
        if cur.revision is not None and cur.seq >= seq:
            return
        ts = await newest_ts(cur.seq, seq)
        if cur.ts is not None:
            ts = cur.ts if ts is None else max(ts, cur.ts)
        if await _write_if(js, subject_prefix, key, cur.revision or 0,
                           _cursor_value(seq, ts, cur.owner)):
            return  # else another writer moved it: read again


async def claim_cursor(
    kv: KeyValue, js: JetStreamContext, subject_prefix: str, consumer: str, owner: str
) -> int:
    """Make `owner` the cursor's only writer (created at 0 if new); the cursor's position."""
    key = kv_key(consumer)
    while True:
        cur = await read_cursor(kv, consumer)
        if cur.revision is not None and cur.owner == owner:
            return cur.seq
        if await _write_if(js, subject_prefix, key, cur.revision or 0,
                           _cursor_value(cur.seq, cur.ts, owner)):
            return cur.seq


async def register_cursor(kv: KeyValue, consumer: str) -> None:
    """Create the cursor at position 0 if it does not exist."""
    with contextlib.suppress(KeyWrongLastSequenceError):  # it exists: leave it
        await kv.create(kv_key(consumer), json.dumps({"seq": 0, "ts": None}).encode())


async def load_checkpoint(kv: KeyValue, name: str) -> str | None:
    """A checkpoint's value, or None."""
    try:
        entry = await kv.get(kv_key(name))
    except KeyNotFoundError:
        return None
    return None if entry.value is None else entry.value.decode("utf-8")


async def save_checkpoint(kv: KeyValue, name: str, value: str) -> None:
    """Replace a checkpoint's value."""
    await kv.put(kv_key(name), value.encode("utf-8"))


async def update_checkpoint(
    kv: KeyValue, js: JetStreamContext, subject_prefix: str, name: str,
    change: Callable[[str | None], str | None],
) -> str | None:
    """Replace a checkpoint with `change(old)` atomically; None from `change` leaves it. Returns
    the value stored when the call ended (`change` is called again after a conflict).

    A write is conditional twice: on the key's revision (`Nats-Expected-Last-Subject-Sequence`,
    what `KeyValue.update` sends) and on a message id naming that revision (`<key>@<revision>`).
    nats-server before 2.9.21 checks the expected revision only before proposing a clustered
    write, so two writers of one revision can both succeed on an R3 bucket (nats-server issue
    4320; Debian 12 ships 2.9.10; the contract test lost 22 of 80 increments). The message id
    makes the second a duplicate the stream answers `duplicate` to: a conflict, read again.
    """
    key = kv_key(name)
    while True:
        try:
            entry = await kv.get(key)
            old = None if entry.value is None else entry.value.decode("utf-8")
            rev = int(entry.revision or 0)
        except KeyNotFoundError:
            old, rev = None, 0
        new = change(old)
        if new is None or new == old:
            return old
        if await _write_if(js, subject_prefix, key, rev, new.encode("utf-8")):
            return new


async def _write_if(js: JetStreamContext, subject_prefix: str, key: str, rev: int,
                    value: bytes) -> bool:
    """Write `value` to a KV key if it is still at revision `rev` (0: absent); False when
    another writer was first (see update_checkpoint for why the message id)."""
    try:
        ack = await js.publish(f"{subject_prefix}{key}", value, headers={
            "Nats-Expected-Last-Subject-Sequence": str(rev),
            "Nats-Msg-Id": f"{key}@{rev}"})
    except APIError as exc:
        if exc.err_code in (10071, 10164):  # wrong last sequence: another writer was first
            return False
        raise
    return not ack.duplicate  # a duplicate: another writer of the same revision was first


async def save_state(obj: ObjectStore, consumer: str, position: int, state: bytes) -> None:
    """Replace the consumer's state object (position first, then the state bytes)."""
    await obj.put(kv_key(consumer), _POS.pack(position) + state)


async def load_state(obj: ObjectStore, consumer: str) -> tuple[int, bytes] | None:
    """The consumer's last state and its position."""
    try:
        res = await obj.get(kv_key(consumer))
    except (ObjectNotFoundError, ObjectDeletedError):
        return None
    data = res.data or b""
    if len(data) < _POS.size:
        return None
    return _POS.unpack_from(data)[0], bytes(data[_POS.size:])
