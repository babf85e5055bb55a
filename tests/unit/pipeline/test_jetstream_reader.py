"""The JetStream reader never hands out a position twice, whatever its server-side consumer
does: a consumer the server re-created starts again at its configured start."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from dcops.pipeline.jetstream.reader import Reader, ReaderBroken


class FakeNats:
    """Answers each pull request with the next scripted batch of stream positions."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = batches
        self.reader: Reader | None = None

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        assert self.reader is not None and subject.startswith("$JS.API.CONSUMER.MSG.NEXT.")
        for seq in self.batches.pop(0):
            msg = SimpleNamespace(headers=None, data=b"x%d" % seq,
                                  metadata=SimpleNamespace(sequence=SimpleNamespace(stream=seq)))
            await self.reader._on_msg(msg)  # type: ignore[arg-type]
        end = SimpleNamespace(headers={"Status": "404"}, data=b"")
        await self.reader._on_msg(end)  # type: ignore[arg-type]


def _reader(batches: list[list[int]], after: int) -> Reader:
    nc = FakeNats(batches)
    r = Reader(nc, None, "EVENTS", after)  # type: ignore[arg-type]
    r.name, r._sub = "c1", SimpleNamespace(subject="_INBOX.x")  # type: ignore[assignment]
    nc.reader = r
    return r


def test_a_consumer_that_goes_forward_is_read_as_it_comes() -> None:
    r = _reader([[11, 14, 15], [], [16]], after=10)

    async def go() -> list[list[int]]:
        return [[s for s, _ in await r.pull(10, 1.0)] for _ in range(3)]

    assert asyncio.run(go()) == [[11, 14, 15], [], [16]]


@pytest.mark.parametrize("second", [[1, 2, 3], [15, 16], [16, 17, 16]],
                         ids=["restarted-at-start", "overlap", "backwards-within-a-batch"])
def test_a_consumer_that_delivers_a_position_again_breaks_the_reader(second: list[int]) -> None:
    """The server re-created the consumer (its node restarted, a meta-leader change): it starts
    again at its configured start. Handing those events out again would feed them twice to the
    correlation windows; the reader is dropped and the caller opens a new one."""
    r = _reader([[11, 12, 13, 14, 15], second], after=10)

    async def go() -> None:
        assert [s for s, _ in await r.pull(5, 1.0)] == [11, 12, 13, 14, 15]
        with pytest.raises(ReaderBroken, match=r"delivered position \d+ again after"):
            await r.pull(5, 1.0)

    asyncio.run(go())


def test_a_consumer_that_starts_before_its_position_breaks_the_reader() -> None:
    r = _reader([[7, 8]], after=10)
    with pytest.raises(ReaderBroken, match="delivered position 7 again after 10"):
        asyncio.run(r.pull(5, 1.0))
