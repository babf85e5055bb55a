"""LineReader: whatever the bytes and however they are written, every line comes out exactly once,
cut at the cap, with exact offsets and sizes; never more than cap bytes of a line are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.collectors.logfile_lines import Line, LineReader


def reference(data: bytes, cap: int) -> list[Line]:
    """The lines a reader must yield for complete input (NUL runs at line starts skipped)."""
    out, pos = [], 0
    while (nl := data.find(b"\n", pos)) >= 0:
        s = pos
        while s < nl and data[s] == 0:
            s += 1
        out.append(Line(s, nl + 1, data[s:nl][:cap], nl - s))
        pos = nl + 1
    return out


pieces = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.just(b"\n"),
        st.builds(lambda n: b"\x00" * n, st.integers(1, 30)),
        st.builds(lambda n: b"L" * n, st.integers(50, 3000)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(pieces, st.integers(1, 64), st.integers(1, 700), st.lists(st.integers(0, 5000), max_size=8))
def test_any_bytes_written_in_any_pieces(tmp_path_factory: pytest.TempPathFactory,
                                         parts: list[bytes], cap: int, chunk: int,
                                         cuts: list[int]) -> None:
    data = b"".join(parts) + b"\n"
    path = tmp_path_factory.mktemp("lr") / "f"
    path.write_bytes(b"")
    reader = LineReader(cap, chunk=chunk)
    got: list[Line] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        written = 0
        for c in [*sorted(min(c, len(data)) for c in cuts), len(data)]:
            with path.open("ab") as f:
                f.write(data[written:c])
            written = max(written, c)
            got += list(reader.read(fd))
            assert len(reader._head) <= cap
    finally:
        os.close(fd)
    want = reference(data, cap)
    assert [(x.start, x.end, x.data, x.size) for x in got] == [
        (x.start, x.end, x.data, x.size) for x in want
    ]
    assert reader.start == reader.scan == len(data)


def test_final_yields_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one\n\x00\x00two and more")
    fd = os.open(path, os.O_RDONLY)
    try:
        r = LineReader(5)
        assert [x.data for x in r.read(fd)] == [b"one"]
        assert r.pending == len(b"two and more")
        (last,) = r.read(fd, final=True)
    finally:
        os.close(fd)
    assert (last.start, last.end, last.data, last.size, last.cut) == (6, 18, b"two a", 12, True)
    assert r.nul_runs == 1
