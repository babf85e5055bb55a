"""Reading the event stream in order from a position: one ephemeral pull consumer, no acks.

Positions are stream sequences. Each reader is a server-side ephemeral consumer (memory, R1,
AckNone, deleted after a minute unused) that starts right after a position; batches are pulled
with `no_wait`, so a caught-up reader answers at once with what there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

INACTIVE_SECONDS = 60.0  # the server drops a reader's consumer unused this long
_END = ("404", "408")  # no (more) messages / request expired: the batch is complete
_HEARTBEAT = "100"


class ReaderBroken(Exception):  # noqa: N818 - internal signal, never reaches a user
    """The consumer went away (node lost, consumer expired): open a new reader."""


class Reader:
    """An in-order cursor over a stream; `after` is the position the next item follows."""

    def __init__(
        self, nc: Client, js: JetStreamContext, stream: str, after: int,
        since: datetime | None = None, *, last_per_subject: str = "", filter_subject: str = "",
    ) -> None:
        self.nc, self.js, self.stream = nc, js, stream
        self.after = after
        self.since = since
        self.last_per_subject = last_per_subject
        self.filter_subject = filter_subject  # only these subjects (one partition's)
        self.name = ""
        self.buffer: deque[tuple[int, bytes]] = deque()
        self._sub: Subscription | None = None
        self._want = 0
        self._got: list[tuple[int, bytes]] = []
        self._error: str | None = None
        self._done: asyncio.Future[None] | None = None
        self._delivered = after  # the newest stream position the consumer has delivered

    async def open(self, wait: float) -> None:
        """Create the consumer and the inbox its batches arrive on."""
        if self.last_per_subject:
            start: dict[str, object] = {"deliver_policy": api.DeliverPolicy.LAST_PER_SUBJECT,
                                        "filter_subject": self.last_per_subject}
        elif self.since is not None:
            start = {"deliver_policy": api.DeliverPolicy.BY_START_TIME,
                     "opt_start_time": self.since}
        else:
            start = {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE,
                     "opt_start_seq": self.after + 1}
        if self.filter_subject and not self.last_per_subject:
            start["filter_subject"] = self.filter_subject
        cfg = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE, mem_storage=True, num_replicas=1,
            inactive_threshold=INACTIVE_SECONDS, max_waiting=4, **start,  # type: ignore[arg-type]
        )
        info = await self.js.add_consumer(self.stream, cfg, timeout=wait)
        self.name = info.name
        self._sub = await self.nc.subscribe(self.nc.new_inbox(), cb=self._on_msg)

    async def pull(self, n: int, wait: float) -> list[tuple[int, bytes]]:
        """Up to `n` messages available now (buffered ones first), in stream order."""
        out: list[tuple[int, bytes]] = []
        while self.buffer and len(out) < n:
            out.append(self.buffer.popleft())
        if len(out) < n:
            out += await self._request(n - len(out), wait)
        return out

    async def _request(self, n: int, wait: float) -> list[tuple[int, bytes]]:
        if self._sub is None:
            raise ReaderBroken("reader not open")
        self._want, self._got, self._error = n, [], None
        self._done = asyncio.get_running_loop().create_future()
        req = json.dumps({"batch": n, "no_wait": True}).encode()
        await self.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}", req,
                              reply=self._sub.subject)
        try:
            await asyncio.wait_for(self._done, wait)
        except TimeoutError as exc:
            raise ReaderBroken(f"no answer from consumer {self.name}") from exc
        finally:
            self._done = None
        if self._error:
            raise ReaderBroken(self._error)
        got = self._got
        # The consumer must go forward from where it was. An ephemeral consumer the server
        # re-creates (its node restarted, its assignment re-sent after a meta-leader change)
        # starts again at its configured start and re-delivers what this reader already
        # returned: the caller would feed those events twice. Drop the reader instead; the
        # caller opens a new one at its position.
        last = self._delivered
        for seq, _ in got:
            if seq <= last:
                raise ReaderBroken(f"consumer {self.name} delivered position {seq} again "
                                   f"after {last} (re-created by the server)")
            last = seq
        self._delivered = last
        return got

    async def _on_msg(self, msg: Msg) -> None:
        """Collect one batch's messages; a status message or the count ends the batch."""
        done = self._done
        if done is None or done.done():
            return  # a late message of an abandoned batch
        status = _status(msg)
        if status == _HEARTBEAT:
            return
        if status is None:
            self._got.append((msg.metadata.sequence.stream, msg.data))
            if len(self._got) < self._want:
                return
        elif status not in _END:
            self._error = f"consumer {self.name}: status {status}"
        done.set_result(None)

    def give_back(self, items: list[tuple[int, bytes]]) -> None:
        """Put read-ahead items back in front of the buffer (they were past `upto`)."""
        self.buffer.extendleft(reversed(items))

    async def close(self) -> None:
        """Drop the inbox and the consumer (best effort: it expires by itself anyway)."""
        with contextlib.suppress(Exception):
            if self._sub is not None:
                await self._sub.unsubscribe()
        with contextlib.suppress(Exception):
            if self.name:
                await self.js.delete_consumer(self.stream, self.name)
        self._sub = None


def _status(msg: Msg) -> str | None:
    if not msg.headers:
        return None
    return msg.headers.get("Status")
