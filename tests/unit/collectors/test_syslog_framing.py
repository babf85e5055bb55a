"""RFC 6587 framing of the TCP syslog stream: octet counting and newline, mixed and split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dcops.collectors.syslog import split_frames


def test_octet_counting_and_newline_mixed() -> None:
    m1 = b"<13>1 - h app - - - has\nnewline inside"
    data = b"%d %s<14>Nov 22 05:00:00 h app: plain\n" % (len(m1), m1)
    frames, rest = split_frames(data)
    assert frames == [m1, b"<14>Nov 22 05:00:00 h app: plain"] and rest == b""


def test_incomplete_frames_are_kept_for_the_next_read() -> None:
    frames, rest = split_frames(b"40 <13>only ten\n<13>Nov")
    assert frames == [] and rest == b"40 <13>only ten\n<13>Nov"
    frames, rest = split_frames(b"12")
    assert frames == [] and rest == b"12"


def test_empty_lines_and_crlf_are_dropped() -> None:
    frames, rest = split_frames(b"\n\r\n<13>a\r\n")
    assert frames == [b"<13>a"] and rest == b""


@given(
    st.lists(
        st.binary(min_size=1, max_size=80).filter(lambda b: b.strip(b"\r\n\x00 ") != b""),
        max_size=20,
    ),
    st.integers(min_value=1, max_value=50),
)
def test_octet_counted_stream_survives_any_split(msgs: list[bytes], cut: int) -> None:
    msgs = [m.rstrip(b"\r\n") or b"x" for m in msgs]
    stream = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    got: list[bytes] = []
    buf = b""
    for i in range(0, len(stream), cut):
        frames, buf = split_frames(buf + stream[i : i + cut])
        got += frames
    assert got == msgs and buf == b""
