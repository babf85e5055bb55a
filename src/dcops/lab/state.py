"""The record of a running lab (state.json in its state directory)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(slots=True)
class HostRecord:
    """One started host: where it lives and the processes that hold it up."""

    name: str
    address: str
    netns: str
    merged: str
    launcher: int = 0  # unshare (chroot mode) or systemd-nspawn (systemd mode)
    leader: int = 0  # the host's PID 1, as seen from this machine


@dataclass(slots=True)
class LabState:
    """Everything `down` needs to undo `up`, even from another process."""

    name: str
    mode: str
    base: str
    repo: str
    http_pid: int = 0
    hosts: dict[str, HostRecord] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        """Read a state file, or None when the lab has no state."""
        if not path.is_file():
            return None
        doc = json.loads(path.read_text())
        hosts = {h["name"]: HostRecord(**h) for h in doc.pop("hosts", [])}
        return cls(**doc, hosts=hosts)

    def save(self, path: Path) -> None:
        """Write the state file atomically."""
        doc = asdict(self)
        doc["hosts"] = [asdict(h) for h in self.hosts.values()]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)
