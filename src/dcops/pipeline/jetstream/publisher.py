"""Publishing with acknowledgements: bounded in flight, every ack awaited, failures retried.

Each message carries `Nats-Msg-Id`, so a publish retried after a timeout (a stream leader being
re-elected, a node killed) is stored once: the server answers `duplicate` for the second copy.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from nats.aio.client import Client
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

# API errors that are about the message itself (it can never be stored as it is).
CONTENT_ERRORS = {10054}  # message size exceeds the stream's maximum


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to store: subject, body and the id the server deduplicates on."""

    subject: str
    body: bytes
    msg_id: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Stored:
    """The server's answer: stored at `seq` (or already stored there, `duplicate`)."""

    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The message itself cannot be stored (too large): it goes to the dead letters."""

    reason: str


class PublishTimeout(Exception):  # noqa: N818 - internal, turned into BusUnavailable
    """Some messages were not acknowledged within the publish timeout."""

    def __init__(self, pending: int, last_error: str) -> None:
        super().__init__(f"{pending} message(s) unacknowledged; last error: {last_error}")
        self.pending = pending


async def publish_all(
    nc: Client, items: list[Outgoing], *, stream: str, inflight: int, ack_timeout: float,
    deadline: float,
) -> list[Stored | Refused]:
    """Publish every item and wait for every acknowledgement; retry until `deadline`."""
    results: list[Stored | Refused | None] = [None] * len(items)
    errors: list[str] = []
    sem = asyncio.Semaphore(max(1, inflight))

    async def one(i: int) -> None:
        it = items[i]
        hdr = {"Nats-Msg-Id": it.msg_id, "Nats-Expected-Stream": stream, **dict(it.headers)}
        async with sem:
            try:
                resp = await nc.request(it.subject, it.body, timeout=ack_timeout, headers=hdr)
            except MaxPayloadError:
                results[i] = Refused(f"{len(it.body)} bytes exceed the server's max_payload "
                                     f"({nc.max_payload})")
                return
            except (NatsTimeout, NoRespondersError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:  # connection closing or reconnecting: retry
                errors.append(f"{type(exc).__name__}: {exc}")
                return
        doc = json.loads(resp.data)
        err = doc.get("error")
        if err is None:
            results[i] = Stored(int(doc["seq"]), bool(doc.get("duplicate", False)))
        elif err.get("err_code") in CONTENT_ERRORS:
            results[i] = Refused(str(err.get("description", err)))
        else:  # no leader yet, store full (discard new), ...: retry
            errors.append(f"JetStream error {err.get('code')}/{err.get('err_code')}: "
                          f"{err.get('description')}")

    delay = 0.05
    todo = list(range(len(items)))
    while True:
        await asyncio.gather(*(one(i) for i in todo))
        todo = [i for i in todo if results[i] is None]
        if not todo:
            return [r for r in results if r is not None]
        if time.monotonic() >= deadline:
            raise PublishTimeout(len(todo), errors[-1] if errors else "none")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
