"""Which file a tailer reads: inode, copytruncate generation and head bytes, kept as a checkpoint.

The inode alone does not identify a log file: copytruncate keeps the inode and starts over at 0, and
a deleted file's inode is soon reused by another. So a position also carries the first bytes of the
file (`head`, up to HEAD_BYTES) and a generation that grows with each copytruncate; lines of a later
generation get other event ids, so a line repeated at the same offset after a truncation is not
mistaken for one already stored.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEAD_BYTES = 64
_COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4")


@dataclass(slots=True)
class FileId:
    """The file a position belongs to."""

    inode: int
    gen: int = 0
    head: bytes = b""  # the file's first bytes as seen (up to HEAD_BYTES)
    file: str = ""  # real path when opened (the target of a symlink), a hint after a restart

    def id_parts(self, offset: int) -> tuple[Any, ...]:
        """Event id parts for a line at `offset` (generation 0 keeps the historical ids)."""
        return (self.inode, offset) if not self.gen else (self.inode, f"g{self.gen}", offset)

    def matches(self, fd: int) -> bool:
        """The open file still starts with the head bytes seen (not truncated and rewritten)."""
        if not self.head:
            return True
        return os.pread(fd, len(self.head), 0) == self.head

    def learn_head(self, fd: int) -> None:
        """Extend the head bytes while the file is shorter than HEAD_BYTES was."""
        if len(self.head) < HEAD_BYTES:
            now = os.pread(fd, HEAD_BYTES, 0)
            if now.startswith(self.head):
                self.head = now

    def dump(self, offset: int) -> str:
        """The checkpoint value."""
        return json.dumps({"inode": self.inode, "offset": offset, "gen": self.gen,
                           "head": self.head.hex(), "file": self.file})


def load(value: str) -> tuple[FileId, int] | None:
    """A saved checkpoint, or None if it cannot be read (the file is then read from its start;
    event ids make the re-read lines no duplicates)."""
    try:
        cp = json.loads(value)
        fid = FileId(int(cp["inode"]), int(cp.get("gen", 0)), bytes.fromhex(cp.get("head", "")),
                     str(cp.get("file", "")))
        return fid, int(cp["offset"])
    except (ValueError, KeyError, TypeError):
        return None


def open_id(path: Path) -> tuple[int, FileId] | None:
    """Open `path` for reading: (fd, its FileId), or None if it does not exist."""
    try:  # O_NONBLOCK: a FIFO put in the log's place must not block the tailer
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    fid = FileId(st.st_ino, file=os.path.realpath(path))
    fid.learn_head(fd)
    return fd, fid


def find_renamed(path: Path, fid: FileId) -> Path | None:
    """Where the file `fid` now is: renamed by rotation, or the old target of a swapped symlink."""
    return _find(path, fid, lambda ino: ino == fid.inode, 0)


def find_copy(path: Path, fid: FileId, min_size: int) -> Path | None:
    """The copy copytruncate made of `fid` (same head bytes, another inode), if it holds more than
    `min_size - 1` bytes."""
    if not fid.head:
        return None
    return _find(path, fid, lambda ino: ino != fid.inode, min_size)


def _find(path: Path, fid: FileId, inode_ok: Callable[[int], bool], min_size: int) -> Path | None:
    cands = [Path(fid.file)] if fid.file else []
    cands += sorted(path.parent.glob(glob_escape(path.name) + "?*"))
    for p in cands:
        if p.name.endswith(_COMPRESSED):
            continue
        try:
            st = p.stat()
            if not inode_ok(st.st_ino) or st.st_size < min_size:
                continue
            with p.open("rb") as fh:
                if fh.read(len(fid.head)) == fid.head:
                    return p
        except OSError:
            continue
    return None


def glob_escape(name: str) -> str:
    """`name` with glob metacharacters escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
