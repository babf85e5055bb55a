"""Which errors a failover explains, and retrying them with a deadline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.js.errors import (
    BadRequestError,
    InvalidBucketNameError,
    InvalidKeyError,
    InvalidObjectNameError,
)

from dcops.pipeline.jetstream.reader import ReaderBroken

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE: tuple[type[BaseException], ...] = (nats.errors.Error, TimeoutError, ReaderBroken,
                                              OSError)
_PERMANENT = (BadRequestError, InvalidKeyError, InvalidBucketNameError, InvalidObjectNameError,
              nats.errors.BadSubjectError, nats.errors.BadHeaderError,
              nats.errors.MaxPayloadError)


def is_retryable(exc: BaseException) -> bool:
    """True for errors a failover or a busy cluster explains (not our own mistakes)."""
    return isinstance(exc, RETRYABLE) and not isinstance(exc, _PERMANENT)


async def retrying(fn: Callable[[], Awaitable[T]], seconds: float, attempt: float = 20.0) -> T:
    """Run `fn` until it succeeds, retrying transient errors for up to `seconds`.

    Each attempt is cut after `attempt` seconds: some nats-py calls (KV key listing, object
    reads) iterate a subscription with no timeout of their own and would wait forever for a
    node that was killed under them.
    """
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        try:
            return await asyncio.wait_for(fn(), max(1.0, min(attempt,
                                                             deadline - time.monotonic())))
        except RETRYABLE as exc:
            if not is_retryable(exc) or time.monotonic() >= deadline:
                raise
            log.debug("bus: retrying after %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
