"""Hostile files for the tailer, with a real SqliteSpool attached: oversized lines, invalid UTF-8
and NULs, rotation races, a normaliser that raises, a locked spool. Nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tracemalloc
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dcops.collectors.health import ORIGINAL_SIZE_FIELD, TRUNCATED_FIELD, SourceStats
from dcops.collectors.logfile import FileTailer
from dcops.collectors.logfile_lines import utf8_text
from dcops.collectors.parsers import Normaliser
from dcops.model.event import Event
from dcops.pipeline import SqliteSpool

CAP = 4096


def line(i: int) -> str:
    return f"Nov 22 04:44:{i % 60:02d} web1 sshd[{i}]: Invalid user u{i} from 10.0.0.1 port {i}\n"


def append(p: Path, rng: range) -> None:
    with p.open("a") as f:
        f.writelines(line(i) for i in rng)


def events(spool: SqliteSpool) -> list[Event]:
    return [e for _, e in spool.fetch_after(0, 1_000_000)]


def users(spool: SqliteSpool) -> list[str]:
    return sorted(str(e.fields["user.name"]) for e in events(spool) if "user.name" in e.fields)


def expect(rng: range) -> list[str]:
    return sorted(f"u{i}" for i in rng)


def checkpoint(spool: SqliteSpool, log: Path) -> dict[str, Any]:
    return dict(json.loads(spool.load_checkpoint(f"logfile:{log.resolve()}") or "{}"))


class Clock:
    """Wall-clock time the test moves by hand (rotate_wait is compared with file mtimes)."""

    def __init__(self) -> None:
        self.now = os.stat(".").st_mtime + 10_000

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SqliteSpool]:
    s = SqliteSpool(tmp_path / "spool.db")
    yield s
    s.close()


def tailer(log: Path, spool: SqliteSpool, **kw: Any) -> FileTailer:
    kw.setdefault("max_message_bytes", CAP)
    return FileTailer(log, spool, spool, **kw)


# -- oversized lines ----------------------------------------------------------------------------


def test_a_20_mb_line_is_cut_marked_and_never_held_in_memory(tmp_path: Path,
                                                            spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(2))
    big = b"Nov 22 04:44:09 web1 sshd[9]: " + b"A" * (20 << 20)
    with log.open("ab") as f:
        f.write(big)  # no newline yet: the writer is still at it
    t = tailer(log, spool)
    peaks = []
    tracemalloc.start()
    try:
        for step in range(3):
            if step == 2:
                with log.open("ab") as f:
                    for _ in range(5):
                        f.write(b"B" * (1 << 20))
                    f.write(b"\n")
                append(log, range(2, 4))
            tracemalloc.reset_peak()
            t.poll()  # the second poll starts where the first stopped scanning
            peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    peak = max(peaks)
    assert peak < 4 << 20, f"peak Python allocation {peak} bytes for a 25 MB line"
    evs = events(spool)
    assert users(spool) == expect(range(4))
    (cut,) = [e for e in evs if e.fields.get(TRUNCATED_FIELD)]
    assert cut.fields[ORIGINAL_SIZE_FIELD] == len(big) + (5 << 20)
    assert len(cut.raw.encode()) <= CAP and cut.raw.startswith("Nov 22 04:44:09 web1 sshd[9]: A")
    assert t.stats.truncated_total == 1 and t.stats.received_total == 5
    assert checkpoint(spool, log)["offset"] == log.stat().st_size


def test_restart_in_the_middle_of_an_oversized_line_stores_it_once(tmp_path: Path,
                                                                  spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(1))
    with log.open("ab") as f:
        f.write(b"x" * 100_000)
    tailer(log, spool).poll()
    assert checkpoint(spool, log)["offset"] == len(line(0))  # waits at the line's start
    with log.open("ab") as f:
        f.write(b"y" * 100_000 + b"\n")
    append(log, range(1, 3))
    tailer(log, spool).poll()  # a new process
    tailer(log, spool).poll()
    evs = events(spool)
    assert len(evs) == 4 and users(spool) == expect(range(3))
    cut = [e.fields[ORIGINAL_SIZE_FIELD] for e in evs if e.fields.get(TRUNCATED_FIELD)]
    assert cut == [200_000]


def test_a_cut_never_splits_a_utf8_character(tmp_path: Path, spool: SqliteSpool) -> None:
    text = ("Nov 22 04:44:01 web1 app: " + "Đồng Nai \U0001d507 " * 2000).encode()
    for cap in range(CAP, CAP + 4):  # every position inside a 2-, 3- and 4-byte character
        cut = utf8_text(text[:cap], True)
        assert "\ufffd" not in cut and text.startswith(cut.encode())
        assert len(cut.encode()) > cap - 4
    log = tmp_path / "auth.log"
    log.write_bytes(text + b"\n")
    tailer(log, spool, max_message_bytes=CAP + 1).poll()
    (e,) = events(spool)
    assert "\ufffd" not in e.raw and text.startswith(e.raw.encode())
    assert e.fields[ORIGINAL_SIZE_FIELD] == len(text)


# -- bytes that are not text ---------------------------------------------------------------------


def test_invalid_utf8_and_nuls_are_stored_and_a_nul_hole_does_not_eat_the_next_line(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(
        line(0).encode()
        + b"Nov 22 04:44:01 web1 sshd[1]: Invalid user \xff\xfe\xc3 from 10.0.0.1 port 1\n"
        + b"Nov 22 04:44:02 web1 app: a\x00b\x00\n"
        + b"\x00" * 300_000  # the hole a crash leaves in a preallocated file, then a line
        + line(3).encode()
        + b"\x00\x00\n"
        + line(4).encode()
    )
    t = tailer(log, spool)
    t.poll()
    evs = events(spool)
    assert len(evs) == 5
    assert users(spool) == sorted(["u0", "u3", "u4", "\ufffd\ufffd\ufffd"])
    assert any(e.raw.endswith("a\x00b\x00") for e in evs)
    assert t.nul_runs == 2 and t.stats.truncated_total == 0


# -- rotation races ------------------------------------------------------------------------------


def test_rename_rotation_keeps_reading_late_writes_to_the_old_file(tmp_path: Path,
                                                                  spool: SqliteSpool) -> None:
    """logrotate renames, creates the new file, and only then tells the writer to reopen: lines
    written to the old file in between are read before the tailer moves on."""
    log, clock = tmp_path / "auth.log", Clock()
    append(log, range(3))
    t = tailer(log, spool, rotate_wait=1.0, clock=clock)
    t.poll()
    with log.open("a") as old:  # the writer's handle, as the daemon holds it
        log.rename(tmp_path / "auth.log.1")
        append(log, range(100, 102))  # another writer already uses the new file
        clock.now = os.stat(tmp_path / "auth.log.1").st_mtime + 0.2
        t.poll()  # the old file was written 0.2 s ago: stay on it
        old.writelines(line(i) for i in range(3, 6))
        old.flush()
        clock.now = os.stat(tmp_path / "auth.log.1").st_mtime + 0.5
        t.poll()
        old.write(line(6)[:20])  # the writer's last, unfinished line
    clock.now += 5
    t.poll()  # reads the unfinished line's bytes: the old file was just written to
    assert t.events["renamed"] == 0
    clock.now += 5
    t.poll()
    got = sorted(e.raw for e in events(spool))
    want = sorted([line(i).rstrip("\n") for i in (*range(6), 100, 101)] + [line(6)[:20]])
    assert got == want
    assert t.events["renamed"] == 1
    st = checkpoint(spool, log)
    assert (st["inode"], st["offset"]) == (log.stat().st_ino, log.stat().st_size)


def test_copytruncate_takes_the_unread_lines_from_the_copy(tmp_path: Path,
                                                          spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(5))
    t = tailer(log, spool)
    t.poll()
    append(log, range(5, 8))  # written after the last poll, before the copy
    shutil.copy(log, tmp_path / "auth.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, range(8, 10))
    t.poll()
    assert users(spool) == expect(range(10)) and len(events(spool)) == 10
    assert (t.events["copytruncate"], t.events["copy_read"]) == (1, 1)


def test_copytruncate_that_regrows_past_the_offset_is_still_seen(tmp_path: Path,
                                                                spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(3))
    t = tailer(log, spool)
    t.poll()
    shutil.copy(log, tmp_path / "auth.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, range(10, 20))  # longer than before: only the first bytes tell
    t.poll()
    assert users(spool) == sorted(expect(range(3)) + expect(range(10, 20)))
    assert t.events["copytruncate"] == 1


def test_the_same_line_again_at_the_same_offset_after_copytruncate_is_a_new_event(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    log = tmp_path / "auth.log"
    append(log, range(3))
    t = tailer(log, spool)
    t.poll()
    with log.open("r+") as f:
        f.truncate(0)
    append(log, range(1))  # byte for byte the first line of the previous generation
    t.poll()
    assert users(spool) == ["u0", "u0", "u1", "u2"]
    assert checkpoint(spool, log)["gen"] == 1
    tailer(log, spool).poll()  # a restart re-reads nothing
    assert len(events(spool)) == 4


def test_restart_after_copytruncate_while_down_reads_the_copy_then_the_file(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    log = tmp_path / "auth.log"
    append(log, range(4))
    tailer(log, spool).poll()
    append(log, range(4, 6))  # the collector is down
    shutil.copy(log, tmp_path / "auth.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, range(6, 8))
    t = tailer(log, spool)
    t.poll()
    t.poll()
    assert users(spool) == expect(range(8)) and len(events(spool)) == 8


def test_file_replaced_mid_line_by_another_inode(tmp_path: Path, spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(2))
    t = tailer(log, spool)
    t.poll()
    with log.open("a") as f:
        f.write(line(2) + line(3)[:25])  # the writer stops mid-line
    new = tmp_path / "auth.log.tmp"
    append(new, range(4, 6))
    new.replace(log)  # atomic replace: the old file has no name any more
    t.poll()
    t.poll()
    assert sorted(e.raw for e in events(spool)) == sorted(
        [line(i).rstrip("\n") for i in (0, 1, 2, 4, 5)] + [line(3)[:25]]
    )
    assert t.events["replaced"] == 1


def test_deleted_file_is_read_to_its_end_released_and_its_successor_read(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    log = tmp_path / "auth.log"
    append(log, range(2))
    t = tailer(log, spool)
    t.poll()
    append(log, range(2, 4))
    log.unlink()
    assert t.poll() == 2
    assert t.unread_bytes == 0 and t.queue_depth == 0
    assert t.events["deleted"] == 1 and checkpoint(spool, log)["inode"] == 0
    append(log, range(4, 6))  # a new file (it may even get the old inode number)
    t.poll()
    assert users(spool) == expect(range(6))


def test_a_reused_inode_with_other_content_is_read_from_its_start(tmp_path: Path,
                                                                 spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    append(log, range(10, 20))
    stale = {"inode": log.stat().st_ino, "offset": 300, "gen": 0,
             "head": b"Dec 31 23:59:59 old-host kernel: something else entirely....".hex()}
    spool.save_checkpoint(f"logfile:{log.resolve()}", json.dumps(stale))
    tailer(log, spool).poll()
    assert users(spool) == expect(range(10, 20))


def test_swapped_symlink_reads_the_old_target_to_its_end_then_the_new(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    a, b, log = tmp_path / "app-1.log", tmp_path / "app-2.log", tmp_path / "current"
    append(a, range(3))
    log.symlink_to(a)
    t = tailer(log, spool)
    t.poll()
    append(a, range(3, 5))
    append(b, range(5, 7))
    tmp = tmp_path / "current.new"
    tmp.symlink_to(b)
    tmp.replace(log)
    t.poll()
    t.poll()
    assert users(spool) == expect(range(7)) and t.events["symlink"] == 1
    append(b, range(7, 8))
    t.close()
    # restart after another swap while down: the old target is found through the saved path
    append(b, range(8, 9))
    c = tmp_path / "app-3.log"
    append(c, range(9, 10))
    tmp.symlink_to(c)
    tmp.replace(log)
    t2 = tailer(log, spool)
    t2.poll()
    t2.poll()
    assert users(spool) == expect(range(10)) and len(events(spool)) == 10


# -- a normaliser that raises --------------------------------------------------------------------


class Fragile(Normaliser):
    """The real normaliser, with a bug on one input."""

    def line(self, raw: str, *, id_parts: tuple[Any, ...], received: datetime | None = None,
             peer: str = "") -> list[Event]:
        if "BOOM" in raw:
            raise RecursionError("parser bug")
        return super().line(raw, id_parts=id_parts, received=received, peer=peer)


def test_a_line_the_normaliser_fails_on_is_dead_lettered_and_the_file_goes_on(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    log = tmp_path / "auth.log"
    append(log, range(3))
    with log.open("a") as f:
        f.write("Nov 22 04:44:09 web1 app: BOOM\n")
    append(log, range(3, 6))
    t = tailer(log, spool, normaliser=Fragile("logfile"))
    t.poll()
    assert users(spool) == expect(range(6))
    (dl,) = spool.dead_letters()
    assert dl["raw"] == b"Nov 22 04:44:09 web1 app: BOOM" and "RecursionError" in str(dl["reason"])
    assert t.stats.drops["dead_letter"] == 1 and t.events["normaliser_error"] == 1
    assert checkpoint(spool, log)["offset"] == log.stat().st_size


# -- a spool that is down ------------------------------------------------------------------------


def lock(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    return con


def test_locked_spool_keeps_the_batch_reads_no_further_and_loses_nothing(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    # The spool waits 60 s on a lock; a test cannot. Same connection, shorter wait.
    spool._db.execute("PRAGMA busy_timeout = 20")
    log = tmp_path / "auth.log"
    append(log, range(3))
    stats = SourceStats("logfile")
    t = tailer(log, spool, stats=stats, batch_lines=2)
    t.poll()
    saved = checkpoint(spool, log)
    holder = lock(tmp_path / "spool.db")
    append(log, range(3, 8))
    t.poll()
    assert stats.sink_errors_total > 0 and t.queue_depth == 2
    assert t.oldest_unstored is not None
    append(log, range(8, 10))
    t.poll()  # still down: nothing more is read
    assert t.queue_depth == 2 and stats.received_total == 5
    assert checkpoint(spool, log) == saved
    holder.execute("ROLLBACK")
    holder.close()
    t.poll()
    assert users(spool) == expect(range(10)) and len(events(spool)) == 10
    assert t.queue_depth == 0 and t.oldest_unstored is None
    assert checkpoint(spool, log)["offset"] == log.stat().st_size
    assert stats.stored_total == 10


def test_crash_while_the_spool_is_locked_then_restart_stores_everything_once(
    tmp_path: Path, spool: SqliteSpool
) -> None:
    spool._db.execute("PRAGMA busy_timeout = 20")
    log = tmp_path / "auth.log"
    append(log, range(4))
    tailer(log, spool).poll()
    holder = lock(tmp_path / "spool.db")
    append(log, range(4, 9))
    doomed = tailer(log, spool)
    doomed.poll()
    assert doomed.queue_depth == 5
    del doomed  # the process dies with its batch in memory
    holder.execute("ROLLBACK")
    holder.close()
    tailer(log, spool).poll()
    assert users(spool) == expect(range(9)) and len(events(spool)) == 9


def test_a_fifo_in_place_of_the_log_does_not_block(tmp_path: Path, spool: SqliteSpool) -> None:
    log = tmp_path / "auth.log"
    os.mkfifo(log)
    t = tailer(log, spool)
    assert t.poll() == 0 and t.events["io_error"] == 1
    log.unlink()
    append(log, range(2))
    t.poll()
    assert users(spool) == expect(range(2))
