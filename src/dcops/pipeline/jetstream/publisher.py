"""Publishing with acknowledgements: bounded in flight, every ack awaited, failures retried.

Each message carries `Nats-Msg-Id`, so a publish retried after a timeout (a stream leader being
re-elected, a node killed) is stored once: the server answers `duplicate` for the second copy.
Acks come back on one wildcard inbox (`AckMux`), not one request per message: per-message
request futures with their own timers cost more than the publish itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import MaxPayloadError

# API errors that are about the message itself (it can never be stored as it is).
CONTENT_ERRORS = {10054}  # message size exceeds the stream's maximum


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to store: subject, body and the id the server deduplicates on."""

    subject: str
    body: bytes
    msg_id: str


@dataclass(frozen=True, slots=True)
class Stored:
    """The server's answer: stored at `seq` (or already stored there, `duplicate`)."""

    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The message itself cannot be stored (too large): it goes to the dead letters."""

    reason: str


class PublishTimeout(Exception):  # noqa: N818 - internal, turned into BusUnavailableError
    """Some messages were not acknowledged within the publish timeout."""

    def __init__(self, pending: int, last_error: str) -> None:
        super().__init__(f"{pending} message(s) unacknowledged; last error: {last_error}")
        self.pending = pending


class AckMux:
    """One subscription `<inbox>.*` that routes each publish acknowledgement to its future."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox() + "."
        self.waiting: dict[str, asyncio.Future[Msg]] = {}
        self._tokens = itertools.count(1)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the ack inbox (re-subscribed by nats-py after a reconnect)."""
        self._sub = await self.nc.subscribe(self.prefix + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        fut = self.waiting.pop(msg.subject[len(self.prefix):], None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def expect(self) -> tuple[str, asyncio.Future[Msg]]:
        """A reply subject and the future its ack will complete."""
        token = str(next(self._tokens))
        fut: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self.waiting[token] = fut
        fut.add_done_callback(lambda _f: self.waiting.pop(token, None))
        return self.prefix + token, fut


async def publish_all(
    mux: AckMux, items: list[Outgoing], *, stream: str, inflight: int, ack_timeout: float,
    deadline: float,
) -> list[Stored | Refused]:
    """Publish every item and wait for every acknowledgement; retry until `deadline`."""
    results: list[Stored | Refused | None] = [None] * len(items)
    errors: list[str] = []
    delay = 0.05
    todo = list(range(len(items)))
    while True:
        await _round(mux, items, todo, results, errors, stream, inflight, ack_timeout)
        todo = [i for i in todo if results[i] is None]
        if not todo:
            return [r for r in results if r is not None]
        if time.monotonic() >= deadline:
            raise PublishTimeout(len(todo), errors[-1] if errors else "no acknowledgement")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _round(
    mux: AckMux, items: list[Outgoing], todo: list[int], results: list[Stored | Refused | None],
    errors: list[str], stream: str, inflight: int, ack_timeout: float,
) -> None:
    """Send `todo` with at most `inflight` unacknowledged, then wait for the acks once."""
    sem = asyncio.Semaphore(max(1, inflight))
    futs: dict[int, asyncio.Future[Msg]] = {}
    for i in todo:
        if not await _acquire(sem, ack_timeout):
            errors.append(f"no acknowledgement within {ack_timeout}s")
            break
        it = items[i]
        reply, fut = mux.expect()
        fut.add_done_callback(lambda _f: sem.release())
        futs[i] = fut
        try:
            await mux.nc.publish(it.subject, it.body, reply=reply,
                                 headers={"Nats-Msg-Id": it.msg_id,
                                          "Nats-Expected-Stream": stream})
        except MaxPayloadError:
            fut.cancel()
            results[i] = Refused(f"{len(it.body)} bytes exceed the server's max_payload "
                                 f"({mux.nc.max_payload})")
        except Exception as exc:  # connection closed or reconnecting: retry this one
            fut.cancel()
            errors.append(f"{type(exc).__name__}: {exc}")
    pending = [f for f in futs.values() if not f.done()]
    if pending:
        await asyncio.wait(pending, timeout=ack_timeout)
    for i, fut in futs.items():
        if not fut.done():
            fut.cancel()
            errors.append(f"no acknowledgement within {ack_timeout}s")
            continue
        if fut.cancelled() or results[i] is not None:
            continue
        answer = fut.result()
        status = answer.headers.get("Status") if answer.headers else None
        if status is not None or not answer.data:  # 503: no stream leader right now
            errors.append(f"status {status} from {answer.subject}")
            continue
        doc = json.loads(answer.data)
        err = doc.get("error")
        if err is None:
            results[i] = Stored(int(doc["seq"]), bool(doc.get("duplicate", False)))
        elif err.get("err_code") in CONTENT_ERRORS:
            results[i] = Refused(str(err.get("description", err)))
        else:  # no leader yet, store full, ...: retry
            errors.append(f"JetStream error {err.get('code')}/{err.get('err_code')}: "
                          f"{err.get('description')}")


async def _acquire(sem: asyncio.Semaphore, wait: float) -> bool:
    """Take a slot; wait at most `wait` seconds for one (wait_for only when needed: it costs)."""
    if not sem.locked():
        await sem.acquire()
        return True
    try:
        await asyncio.wait_for(sem.acquire(), wait)
    except TimeoutError:
        return False
    return True
