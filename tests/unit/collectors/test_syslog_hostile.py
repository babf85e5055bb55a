"""Hostile syslog streams: the framers (RFC 6587, RELP) cap every message and never buffer
beyond the cap; the writer serves UDP and TCP fairly; a parser failure costs one message only."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcops.collectors.health import (
    ORIGINAL_SIZE_FIELD,
    TRUNCATED_FIELD,
    IntakeMetrics,
)
from dcops.collectors.syslog_relp import RelpFramer
from dcops.collectors.syslog_stream import Frame, StreamFramer, split_frames
from dcops.collectors.syslog_writer import Item, Writer
from dcops.model.event import Event


def _feed(framer: StreamFramer, stream: bytes, cuts: Sequence[int]) -> list[Frame]:
    out: list[Frame] = []
    pos = 0
    for c in [*cuts, len(stream)]:
        if c > pos:
            out += framer.feed(stream[pos:c])
            pos = c
    return out


_piece = st.one_of(
    st.binary(max_size=40).map(lambda b: b"%d %s" % (len(b), b)),  # octet counted
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"),  # newline
    st.binary(max_size=12),  # anything
)


@given(st.lists(_piece, max_size=25), st.lists(st.integers(0, 1200), max_size=30))
def test_streaming_framer_matches_the_reference_on_any_split(
    pieces: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(pieces)
    expected, _ = split_frames(stream)
    got = _feed(StreamFramer(0), stream, sorted(cuts))
    assert [f.data for f in got] == expected
    assert not any(f.truncated for f in got)


@given(st.lists(_piece, max_size=25), st.lists(st.integers(0, 1200), max_size=30),
       st.integers(1, 30))
def test_capped_framer_cuts_marks_and_stays_bounded(
    pieces: list[bytes], cuts: list[int], cap: int
) -> None:
    stream = b"".join(pieces)
    framer = StreamFramer(cap)
    got: list[Frame] = []
    pos = 0
    for c in [*sorted(cuts), len(stream)]:
        if c > pos:
            got += framer.feed(stream[pos:c])
            pos = c
            assert framer.buffered <= cap + 9
    uncapped = _feed(StreamFramer(0), stream, sorted(cuts))
    assert len(got) == len(uncapped)
    for g, u in zip(got, uncapped, strict=True):
        assert len(g.data) <= cap and g.size == u.size
        assert g.truncated == (u.size > cap)
        if not g.truncated:
            assert g.data == u.data


def test_ten_megabytes_without_newline_cost_the_cap_only() -> None:
    cap = 64 * 1024
    framer = StreamFramer(cap)
    chunk = b"A" * 65536
    for _ in range(160):  # 10 MiB, no newline
        assert framer.feed(chunk) == []
        assert framer.buffered <= cap
    frames = framer.feed(b"tail\n<13>Nov 22 05:00:00 h app: next\n")
    assert len(frames) == 2
    assert frames[0].truncated and frames[0].size == 160 * 65536 + 4
    assert frames[0].data == b"A" * cap
    assert frames[1] == Frame(b"<13>Nov 22 05:00:00 h app: next", 31, False)


def test_octet_count_beyond_the_cap_is_read_and_discarded_as_it_streams() -> None:
    framer = StreamFramer(1000, max_frame=10_000_000)
    n = 5_000_000
    assert framer.feed(b"%d <13>" % n) == []
    sent = 4
    while sent < n - 100_000:
        assert framer.feed(b"x" * 100_000) == []
        sent += 100_000
        assert framer.buffered <= 1000
    frames = framer.feed(b"y" * (n - sent) + b"12 <13>h app: z")
    got = [(len(f.data), f.size, f.truncated) for f in frames]
    assert got == [(1000, n, True), (12, 12, False)]


def test_octet_count_beyond_max_frame_is_a_framing_error_read_as_a_line() -> None:
    # `99999999 x` must not swallow the next 100 MB of the connection (rsyslog's MaxFrameSize)
    framer = StreamFramer(1000)
    assert framer.max_frame == 200_000
    stream = b"99999999 <13>h big: count too large\n12 <13>h app: z<13>h app: after\n"
    frames = [f.data for f in framer.feed(stream)]
    assert frames == [b"99999999 <13>h big: count too large", b"<13>h app: z",
                      b"<13>h app: after"]
    assert framer.framing_errors == 1 and framer.malformed == 0
    # a count at max_frame is still believed (cut at the cap, the rest read and discarded)
    framer = StreamFramer(1000)
    body = b"x" * 200_000
    got = framer.feed(b"200000 " + body + b"5 <13>z")
    assert [(len(f.data), f.size, f.truncated) for f in got] == [(1000, 200_000, True),
                                                                 (5, 5, False)]
    assert framer.framing_errors == 0


def test_a_count_split_across_reads_is_judged_once_whole() -> None:
    framer = StreamFramer(100)
    got = [f.data for b in (b"9999", b"9999", b"9 <13>h a: long count\n") for f in framer.feed(b)]
    assert got == [b"999999999 <13>h a: long count"] and framer.framing_errors == 1


def test_end_of_stream_half_octet_frame_is_malformed_and_a_last_line_is_kept() -> None:
    framer = StreamFramer(100)
    assert framer.feed(b"50 <13>only part") == []
    assert framer.close() == [] and framer.malformed == 1
    framer = StreamFramer(100)
    assert framer.feed(b"<13>no newline at the end\r\n") == [Frame(b"<13>no newline at the end",
                                                                     26, False)]
    assert framer.feed(b"<13>last") == []
    assert framer.close() == [Frame(b"<13>last", 8, False)] and framer.malformed == 0


def test_one_byte_at_a_time_is_the_same_stream() -> None:
    stream = b"<13>Nov 22 05:00:00 h app: one\n12 <13>h a: two<13>h app: three\n"
    framer = StreamFramer(64)
    frames = [f.data for b in range(len(stream)) for f in framer.feed(stream[b : b + 1])]
    assert frames == [b"<13>Nov 22 05:00:00 h app: one", b"<13>h a: two", b"<13>h app: three"]


class _Batches:
    """A sink recording each publish (one per writer cycle)."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.dead: list[tuple[str, bytes, str]] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        self.dead.append((source, raw, reason))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _writer(sink: _Batches, loop: asyncio.AbstractEventLoop, batch: int) -> Writer:
    return Writer(sink, IntakeMetrics(), loop, batch=batch, cycle=60.0, idle=0.05,
                  legacy=Counter())


def _frames(n: int, tag: str) -> list[Frame]:
    return [Frame(b"<13>Nov 22 05:00:00 h app: %s %d" % (tag.encode(), i), 30, False)
            for i in range(n)]


def test_a_tcp_backlog_does_not_starve_udp(loop: asyncio.AbstractEventLoop) -> None:
    sink = _Batches()
    w = _writer(sink, loop, batch=2000)
    for i in range(40):  # a TCP backlog: 40 reads of 600 messages
        w.put(Item("syslog_tcp", "10.0.0.1", float(i), _frames(600, "tcp")))
    for i in range(3000):
        w.put(Item("syslog_udp", "10.0.0.2", float(i), _frames(1, "udp")))
    w.start(lambda acks: None)
    w.stop()
    assert w.finished.wait(60)
    first = Counter(e.fields["message"].split()[0] for e in sink.batches[0])
    assert first["udp"] >= 800 and first["tcp"] >= 800, first
    assert sum(len(b) for b in sink.batches) == 40 * 600 + 3000
    assert w.depth == dict.fromkeys(w.depth, 0)


def test_truncated_frames_are_marked_and_a_parser_failure_is_dead_lettered(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = _Batches()
    w = _writer(sink, loop, batch=100)
    real = w.normaliser.line

    def line(raw: str, **kw: object) -> list[Event]:
        if "boom" in raw:
            raise RecursionError("parser blew up")
        return real(raw, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(w.normaliser, "line", line)
    w.put(Item("syslog_tcp", "p", 1.0, [Frame(b"<13>Nov 22 05:00:00 h app: cut", 99_999, True),
                                        Frame(b"<13>Nov 22 05:00:00 h app: boom", 31, False),
                                        Frame(b"<13>Nov 22 05:00:00 h app: fine", 31, False)]))
    w.start(lambda acks: None)
    w.stop()
    assert w.finished.wait(30)
    events = [e for b in sink.batches for e in b]
    assert [e.fields["message"] for e in events] == ["cut", "fine"]
    assert events[0].fields[TRUNCATED_FIELD] is True
    assert events[0].fields[ORIGINAL_SIZE_FIELD] == 99_999
    assert TRUNCATED_FIELD not in events[1].fields
    assert [(s, r) for s, r, _ in sink.dead] == [("syslog_tcp", b"<13>Nov 22 05:00:00 h app: boom")]
    st_ = w.metrics.source("syslog_tcp")
    assert st_.drops["dead_letter"] == 1 and st_.stored_total == 2


def test_fair_across_short_cycles_in_both_directions(loop: asyncio.AbstractEventLoop) -> None:
    """With one read per cycle (a slow parser), service still alternates by message count."""
    sink = _Batches()
    w = Writer(sink, IntakeMetrics(), loop, batch=2000, cycle=0.0, idle=0.05, legacy=Counter())
    for i in range(10):
        w.put(Item("syslog_tcp", "10.0.0.1", float(i), _frames(300, "tcp")))
    for i in range(3000):
        w.put(Item("syslog_udp", "10.0.0.2", float(i), _frames(1, "udp")))
    w.start(lambda acks: None)
    w.stop()
    assert w.finished.wait(120)
    first = Counter(e.fields["message"].split()[0] for b in sink.batches for e in b
                    ).most_common()
    head = Counter(e.fields["message"].split()[0]
                   for e in [e for b in sink.batches for e in b][:1200])
    assert head["udp"] >= 500 and head["tcp"] >= 500, head
    assert dict(first) == {"tcp": 3000, "udp": 3000}


_relp_frame = st.tuples(st.integers(1, 999_999_999), st.sampled_from(["syslog", "open", "close"]),
                        st.binary(max_size=60))


@given(st.lists(_relp_frame, max_size=15), st.lists(st.integers(0, 1500), max_size=20),
       st.integers(1, 80))
def test_relp_frames_survive_any_split_and_are_capped(
    frames: list[tuple[int, str, bytes]], cuts: list[int], cap: int
) -> None:
    stream = b"".join(b"%d %s %d %s\n" % (t, c.encode(), len(d), d) if d
                      else b"%d %s 0\n" % (t, c.encode()) for t, c, d in frames)
    framer = RelpFramer(cap)
    got = []
    pos = 0
    for c in [*sorted(cuts), len(stream)]:
        if c > pos:
            got += framer.feed(stream[pos:c])
            pos = c
    assert not framer.broken
    assert [(f.txnr, f.command, f.data, f.size) for f in got] == [
        (t, c, d[:cap], len(d)) for t, c, d in frames]


@pytest.mark.parametrize("junk", [b"<13>plain syslog\n", b"1 syslog 5 abc\n",
                                  b"12345678901 x 1 a\n", b"1 syslog 3\n",
                                  b"1 " + b"a" * 40 + b" 0\n"])
def test_relp_framer_refuses_what_is_not_relp(junk: bytes) -> None:
    framer = RelpFramer(100)
    framer.feed(junk + b"2 syslog 1 x\n")
    assert framer.broken
