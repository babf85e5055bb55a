"""One connection to the cluster and what the bus keeps on it: streams, buckets and readers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TypeVar

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import (
    BucketNotFoundError,
    NotFoundError,
)
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from dcops.model.event import Event, LogSource
from dcops.pipeline.codec import decode
from dcops.pipeline.jetstream.config import JetStreamConfig
from dcops.pipeline.jetstream.publisher import AckMux
from dcops.pipeline.jetstream.reader import Reader, ReaderBroken
from dcops.pipeline.jetstream.retry import retrying
from dcops.pipeline.jetstream.window import FetchWindow

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_READERS = 8  # open readers (one per position being read from: runner, refeed, scans)
# ... plus one per partition (a worker may own every partition of the bus, each read at once)
SCAN_BATCH = 1000
# A reader's consumer may live on a replica that has not applied a write the leader already
# acknowledged: a read that comes back short of what this session stored asks again this long.
READ_YOUR_WRITES_SECONDS = 2.0
READ_RETRY_SECONDS = 0.02


def undecodable(seq: int, body: bytes) -> Event:
    """An event for a message someone else put on our subjects: kept raw, never dropped."""
    return Event(id=f"bus-undecodable-{seq}", timestamp=datetime.now(UTC), source="bus",
                 logsource=LogSource(), raw=body.decode("utf-8", "replace"), parsed=False)


class Session:
    """The connection, the JetStream objects of one prefix and the open readers."""

    def __init__(self, cfg: JetStreamConfig) -> None:
        self.cfg = cfg
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: dict[str, KeyValue] = {}
        self._obj: ObjectStore | None = None
        self._mux: AckMux | None = None
        self._readers: OrderedDict[tuple[str, int], Reader] = OrderedDict()
        self._read_lock = asyncio.Lock()
        self.windows: dict[str, FetchWindow] = {}  # per subject filter ("" = every event)
        self.last_error = ""
        self.newest_stored = 0  # highest stream sequence a publish of this session was given
        self.newest_by_filter: dict[str, int] = {}  # the same per partition filter

    def stored(self, seqs: list[int], by_filter: dict[str, int] | None = None) -> None:
        """Remember the newest position this session's publishes were acknowledged at."""
        if seqs:
            self.newest_stored = max(self.newest_stored, *seqs)
        for f, seq in (by_filter or {}).items():
            self.newest_by_filter[f] = max(self.newest_by_filter.get(f, 0), seq)

    def window(self, subject_filter: str = "") -> FetchWindow:
        """What was fetched last through one filter (event times for the cursor)."""
        w = self.windows.get(subject_filter)
        if w is None:
            w = self.windows[subject_filter] = FetchWindow()
        return w

    @property
    def nc(self) -> Client:
        """The connection (open)."""
        if self._nc is None:
            raise nats.errors.ConnectionClosedError
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (open)."""
        if self._js is None:
            raise nats.errors.ConnectionClosedError
        return self._js

    @property
    def mux(self) -> AckMux:
        """Where publish acknowledgements arrive."""
        if self._mux is None:
            raise nats.errors.ConnectionClosedError
        return self._mux

    @property
    def cursors(self) -> KeyValue:
        """KV bucket of consumer cursors."""
        return self._kv["cursors"]

    @property
    def checkpoints(self) -> KeyValue:
        """KV bucket of checkpoints."""
        return self._kv["checkpoints"]

    @property
    def state(self) -> ObjectStore:
        """Object store of consumer state."""
        if self._obj is None:
            raise nats.errors.ConnectionClosedError
        return self._obj

    @property
    def max_payload(self) -> int:
        """Largest message the server takes."""
        return self.nc.max_payload

    async def _on_error(self, exc: Exception) -> None:
        """Remember the server's last complaint (permissions, authorization, TLS) for errors."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.info("bus connection: %s", self.last_error)

    async def open(self) -> None:
        """Connect, then find or create the streams and buckets."""
        cfg = self.cfg
        opts = cfg.connect_options()
        self._nc = await asyncio.wait_for(nats.connect(error_cb=self._on_error, **opts),
                                          cfg.publish_timeout)
        self._js = self._nc.jetstream(timeout=cfg.request_timeout)
        self._mux = AckMux(self._nc)
        await self._mux.start()
        await retrying(self._ensure, cfg.publish_timeout)

    async def _ensure(self) -> None:
        cfg = self.cfg
        storage = api.StorageType.FILE if cfg.storage == "file" else api.StorageType.MEMORY
        for name, subject in ((cfg.events_stream, f"{cfg.prefix}.events.>"),
                              (cfg.deadletter_stream, f"{cfg.prefix}.deadletters.>")):
            try:
                await self.js.stream_info(name)
            except NotFoundError:
                if not cfg.create:
                    raise
                await self.js.add_stream(api.StreamConfig(
                    name=name, subjects=[subject], retention=api.RetentionPolicy.LIMITS,
                    max_age=cfg.max_age, max_bytes=cfg.max_bytes, storage=storage,
                    num_replicas=cfg.replicas, duplicate_window=cfg.duplicate_window,
                    discard=api.DiscardPolicy.OLD, allow_direct=True))
        for role, bucket in (("cursors", cfg.cursor_bucket),
                             ("checkpoints", cfg.checkpoint_bucket)):
            try:
                self._kv[role] = await self.js.key_value(bucket)
            except BucketNotFoundError:
                if not cfg.create:
                    raise
                self._kv[role] = await self.js.create_key_value(api.KeyValueConfig(
                    bucket=bucket, history=1, replicas=cfg.replicas, storage=storage))
        try:
            self._obj = await self.js.object_store(cfg.state_bucket)
        except NotFoundError:
            if not cfg.create:
                raise
            self._obj = await self.js.create_object_store(
                cfg.state_bucket, api.ObjectStoreConfig(replicas=cfg.replicas, storage=storage))

    async def close(self) -> None:
        """Close readers and the connection."""
        for r in list(self._readers.values()):
            await r.close()
        self._readers.clear()
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5)
        self._nc = None

    # -- reading -----------------------------------------------------------------------------

    async def read(self, position: int, limit: int, upto: int | None,
                   subject_filter: str = "") -> list[tuple[int, Event]]:
        """Events after `position` (at or before `upto`, on `subject_filter` when given) from
        the reader left there."""
        async with self._read_lock:
            reader = self._readers.pop((subject_filter, position), None)
            if reader is None:
                reader = Reader(self.nc, self.js, self.cfg.events_stream, position,
                                filter_subject=subject_filter)
                await reader.open(self.cfg.request_timeout)
            try:
                got = await self._pull_own_writes(reader, position, limit, upto, subject_filter)
            except ReaderBroken:
                await reader.close()
                raise
            if upto is not None and got and got[-1][0] > upto:
                keep = [g for g in got if g[0] <= upto]
                reader.give_back(got[len(keep):])
                got = keep
            if got:
                reader.after = got[-1][0]
            await self._keep(reader)
        events = [(seq, decode_or_keep(seq, body)) for seq, body in got]
        self.window(subject_filter).add(position,
                                        [(seq, e.timestamp.timestamp()) for seq, e in events])
        return events

    async def _pull_own_writes(
        self, reader: Reader, position: int, limit: int, upto: int | None,
        subject_filter: str = "",
    ) -> list[tuple[int, bytes]]:
        """A pull that sees every event this session stored after `position` (read your writes).

        The stream acknowledges a write once a quorum has it; the reader's consumer may sit on a
        replica that applies it a moment later and answers a no-wait pull with nothing yet.
        """
        got = await reader.pull(limit, self.cfg.request_timeout)
        newest = (self.newest_by_filter.get(subject_filter, 0) if subject_filter
                  else self.newest_stored)
        want = newest if upto is None else min(upto, newest)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_YOUR_WRITES_SECONDS
        while (len(got) < limit and (got[-1][0] if got else position) < want
               and loop.time() < deadline):
            await asyncio.sleep(READ_RETRY_SECONDS)
            got += await reader.pull(limit - len(got), self.cfg.request_timeout)
        return got

    async def _keep(self, reader: Reader) -> None:
        key = (reader.filter_subject, reader.after)
        old = self._readers.pop(key, None)
        if old is not None and old is not reader:
            await old.close()
        self._readers[key] = reader
        while len(self._readers) > MAX_READERS + self.cfg.partitions:
            _, oldest = self._readers.popitem(last=False)
            await oldest.close()

    async def scan(self, since: datetime | None, upto: int,
                   subject_filter: str = "") -> list[tuple[int, bytes]]:
        """Every message at or before `upto`, from publish time `since` (or the start)."""
        reader = Reader(self.nc, self.js, self.cfg.events_stream, 0, since=since,
                        filter_subject=subject_filter)
        out: list[tuple[int, bytes]] = []
        try:
            await reader.open(self.cfg.request_timeout)
            while True:
                got = await reader.pull(SCAN_BATCH, self.cfg.request_timeout)
                out += [g for g in got if g[0] <= upto]
                if not got or got[-1][0] >= upto:
                    return out
        finally:
            await reader.close()

    async def newest_ts(self, old: int, new: int, subject_filter: str = "") -> float | None:
        """The newest event time in positions (old, new] (on `subject_filter` when given)."""
        window = self.window(subject_filter)
        if window.covers(old, new):
            return window.newest(old, new)
        reader = Reader(self.nc, self.js, self.cfg.events_stream, old,
                        filter_subject=subject_filter)
        best: float | None = None
        try:
            await reader.open(self.cfg.request_timeout)
            while True:
                got = await reader.pull(SCAN_BATCH, self.cfg.request_timeout)
                for seq, body in got:
                    if seq <= new:
                        ts = decode_or_keep(seq, body).timestamp.timestamp()
                        best = ts if best is None else max(best, ts)
                if not got or got[-1][0] >= new:
                    return best
        finally:
            await reader.close()

    # -- counts ------------------------------------------------------------------------------

    async def event_count(self) -> int:
        """Messages in the events stream."""
        return int((await self.js.stream_info(self.cfg.events_stream)).state.messages)

    async def last_seq(self) -> int:
        """The newest position of the events stream."""
        return int((await self.js.stream_info(self.cfg.events_stream)).state.last_seq)

    async def next_seq(self, after: int, subject_filter: str) -> int | None:
        """The position of the first event on `subject_filter` after `after`, asked of the
        stream leader (STREAM.MSG.GET, not a direct get a lagging replica may answer); None
        when the leader holds none."""
        try:
            msg = await self.js.get_msg(self.cfg.events_stream, after + 1,
                                        subject=subject_filter, next=True)
        except NotFoundError:
            return None
        return int(msg.seq or 0) or None

    async def subject_counts(self) -> dict[str, int]:
        """Messages per subject of the events stream."""
        info = await self.js.stream_info(self.cfg.events_stream,
                                         subjects_filter=f"{self.cfg.prefix}.events.>")
        return {str(k): int(v) for k, v in (info.state.subjects or {}).items()}

    async def dead_letter_count(self) -> int:
        """Messages in the dead-letter stream."""
        return int((await self.js.stream_info(self.cfg.deadletter_stream)).state.messages)

    async def cursor_positions(self) -> list[int]:
        """Every consumer's position, read from the cursor bucket's stream (last per key)."""
        bucket = self.cfg.cursor_bucket
        reader = Reader(self.nc, self.js, f"KV_{bucket}", 0, last_per_subject=f"$KV.{bucket}.>")
        out: list[int] = []
        try:
            await reader.open(self.cfg.request_timeout)
            while got := await reader.pull(SCAN_BATCH, self.cfg.request_timeout):
                out += [json.loads(body)["seq"] for _, body in got if body]
        finally:
            await reader.close()
        return out

    async def backlog(self) -> int:
        """Newest position minus the slowest cursor (0 with no cursor)."""
        cursors = await self.cursor_positions()
        if not cursors:
            return 0
        last = (await self.js.stream_info(self.cfg.events_stream)).state.last_seq
        return max(0, int(last) - min(cursors))

    async def newest_dead(self, limit: int) -> list[bytes]:
        """Bodies of the newest `limit` dead letters, newest first."""
        st = (await self.js.stream_info(self.cfg.deadletter_stream)).state
        if not st.messages or limit <= 0:
            return []
        after = max(int(st.first_seq) - 1, int(st.last_seq) - limit)
        reader = Reader(self.nc, self.js, self.cfg.deadletter_stream, after)
        try:
            await reader.open(self.cfg.request_timeout)
            got = await reader.pull(limit, self.cfg.request_timeout)
        finally:
            await reader.close()
        return [body for _, body in reversed(got)]


def decode_or_keep(seq: int, body: bytes) -> Event:
    """The event of a stream message, or (not one of ours) the message kept raw."""
    try:
        return decode(body)
    except Exception:  # not one of ours: keep it raw
        return undecodable(seq, body)
