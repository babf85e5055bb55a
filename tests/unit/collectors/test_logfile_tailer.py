"""Log-file tailer: rotation by rename+create and by copytruncate, resume at inode/offset."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from dcops.collectors import logfile
from dcops.collectors.logfile import FileTailer
from dcops.pipeline import SqliteSpool


def line(i: int) -> str:
    return f"Nov 22 04:44:{i % 60:02d} web1 sshd[{i}]: Invalid user u{i} from 10.0.0.1 port {i}\n"


def users(spool: SqliteSpool) -> list[str]:
    return sorted(e.fields["user.name"] for _, e in spool.fetch("t", 100000))


def append(p: Path, rng: range) -> None:
    with p.open("a") as f:
        f.writelines(line(i) for i in rng)


def test_partial_line_waits_for_newline(tmp_path: Path) -> None:
    log, spool = tmp_path / "auth.log", SqliteSpool(tmp_path / "s.db")
    log.write_text(line(1) + line(2)[:20])
    t = FileTailer(log, spool, spool)
    assert t.poll() == 1
    with log.open("a") as f:
        f.write(line(2)[20:])
    assert t.poll() == 1
    assert users(spool) == ["u1", "u2"]


def test_rename_and_create_rotation(tmp_path: Path) -> None:
    log, spool = tmp_path / "auth.log", SqliteSpool(tmp_path / "s.db")
    append(log, range(5))
    t = FileTailer(log, spool, spool)
    t.poll()
    append(log, range(5, 8))  # written before rotation, not yet read
    log.rename(tmp_path / "auth.log.1")
    append(log, range(8, 10))
    t.poll()
    assert users(spool) == sorted(f"u{i}" for i in range(10))


def test_copytruncate_rotation(tmp_path: Path) -> None:
    log, spool = tmp_path / "auth.log", SqliteSpool(tmp_path / "s.db")
    append(log, range(5))
    t = FileTailer(log, spool, spool)
    t.poll()
    shutil.copy(log, tmp_path / "auth.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, range(5, 7))
    t.poll()
    assert users(spool) == sorted(f"u{i}" for i in range(7))


def test_resume_after_restart_without_duplicates(tmp_path: Path) -> None:
    log, db = tmp_path / "auth.log", tmp_path / "s.db"
    append(log, range(5))
    spool = SqliteSpool(db)
    FileTailer(log, spool, spool).poll()
    spool.close()
    append(log, range(5, 9))
    spool = SqliteSpool(db)
    FileTailer(log, spool, spool).poll()
    assert users(spool) == sorted(f"u{i}" for i in range(9))
    assert spool.count() == 9


def test_restart_after_rotation_drains_rotated_file(tmp_path: Path) -> None:
    log, db = tmp_path / "auth.log", tmp_path / "s.db"
    append(log, range(3))
    spool = SqliteSpool(db)
    FileTailer(log, spool, spool).poll()
    append(log, range(3, 6))  # tailer is down while these arrive and the file rotates
    log.rename(tmp_path / "auth.log.1")
    append(log, range(6, 8))
    FileTailer(log, spool, spool).poll()
    assert users(spool) == sorted(f"u{i}" for i in range(8))
    assert spool.count() == 8


def test_lost_checkpoint_rereads_without_duplicates(tmp_path: Path) -> None:
    log, spool = tmp_path / "auth.log", SqliteSpool(tmp_path / "s.db")
    append(log, range(4))
    FileTailer(log, spool, spool).poll()
    spool.save_checkpoint(
        f"logfile:{log.resolve()}", json.dumps({"inode": os.stat(log).st_ino, "offset": 0})
    )
    FileTailer(log, spool, spool).poll()
    assert spool.count() == 4


def test_audit_log_events_are_joined_across_batches(tmp_path: Path) -> None:
    log, spool = tmp_path / "audit.log", SqliteSpool(tmp_path / "s.db")
    recs = [
        'type=SYSCALL msg=audit(1700000000.1:7): syscall=59 success=yes pid=2 exe="/bin/id"\n',
        'type=EXECVE msg=audit(1700000000.1:7): argc=1 a0="id"\n',
        "type=EOE msg=audit(1700000000.1:7): \n",
    ]
    log.write_text(recs[0])
    t = FileTailer(log, spool, spool, batch_lines=1, audit_idle=3600)
    t.poll()  # SYSCALL alone is held back: the rest of its event may still be on its way
    assert spool.count() == 0
    assert (
        json.loads(spool.load_checkpoint(f"logfile:{log.resolve()}") or '{"offset": 0}')["offset"]
        == 0
    )
    with log.open("a") as f:
        f.writelines(recs[1:])
    t.poll()
    evs = [e for _, e in spool.fetch("t", 10)]
    assert [e.logsource.service or e.logsource.category for e in evs] == [
        "auditd",
        "process_creation",
    ]
    assert evs[0].fields["type"] == ["SYSCALL", "EXECVE"]
    saved = json.loads(spool.load_checkpoint(f"logfile:{log.resolve()}") or "{}")
    assert saved["offset"] == log.stat().st_size


def test_held_audit_record_flushes_when_idle(tmp_path: Path) -> None:
    log, spool = tmp_path / "audit.log", SqliteSpool(tmp_path / "s.db")
    log.write_text("type=USER_AUTH msg=audit(1700000000.1:8): pid=1 uid=0 msg='res=failed'\n")
    t = FileTailer(log, spool, spool, audit_idle=0)
    t.poll()
    t.poll()
    assert spool.count() == 1


def test_restart_racing_a_rotation_reads_the_rest_of_the_saved_file(tmp_path: Path,
                                                                    monkeypatch: Any) -> None:
    """The file is rotated at the worst moment of a restart (right before the tailer opens it):
    the rest of the saved file is still read, then the new one (a CI run once lost 300 lines)."""
    log, spool = tmp_path / "auth.log", SqliteSpool(tmp_path / "s.db")
    append(log, range(5))
    first = FileTailer(log, spool, spool)
    first.poll()
    first.close()
    append(log, range(5, 9))  # arrives while the collector is down
    real_open = logfile.open_id
    rotated: list[bool] = []

    def open_after_rotation(path: Path) -> Any:
        if path == log and not rotated:
            rotated.append(True)
            log.rename(tmp_path / "auth.log.1")
            append(log, range(9, 12))
        return real_open(path)

    monkeypatch.setattr(logfile, "open_id", open_after_rotation)
    FileTailer(log, spool, spool).poll()
    assert rotated
    assert users(spool) == sorted(f"u{i}" for i in range(12))
