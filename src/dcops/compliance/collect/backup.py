"""Evidence of backups and drills: restic snapshot age and check, DR drill records (JSON)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dcops.compliance.evidence import Evidence, iso, strict_loads, utcnow
from dcops.model import SiteModel


@dataclass(frozen=True, slots=True)
class Repository:
    """A host's restic repository as the controller reaches it."""

    host: str
    repository: str
    password_file: str


def parse_time(text: str) -> datetime:
    """restic/RFC 3339 time with nanoseconds -> aware datetime (UTC)."""
    m = re.match(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    head, digits, tz = m.group(1), m.group(2) or "", m.group(3) or "Z"
    stamp = datetime.fromisoformat(head + (f".{digits[:6].ljust(6, '0')}" if digits else "")
                                   + tz.replace("Z", "+00:00"))
    return stamp.astimezone(UTC)


class BackupCollector:
    """Runs `restic snapshots` and `restic check` per repository; reads DR drill records."""

    name = "backup"

    def __init__(self, repositories: list[Repository], drill_dir: Path | None,
                 *, run_check: bool = True) -> None:
        self.repositories = repositories
        self.drill_dir = drill_dir
        self.run_check = run_check

    def _restic(self, repo: Repository, *args: str) -> tuple[int, str, str]:
        cmd = ["restic", "-r", repo.repository, "--password-file", repo.password_file,
               "--no-cache", *args]
        env = {**os.environ, "RESTIC_PROGRESS_FPS": "0"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 255, "", str(exc)
        return proc.returncode, proc.stdout, proc.stderr

    def collect(self, model: SiteModel, evidence: Evidence) -> None:
        """Facts per host: backup.last_snapshot_age_h, backup.check_ok, backup.encrypted, dr.*."""
        now = utcnow()
        for repo in self.repositories:
            if repo.host not in model.hosts:
                continue
            command = f"restic -r {repo.repository} snapshots --json --latest 1"
            rc, out, err = self._restic(repo, "snapshots", "--json", "--latest", "1")
            rid = evidence.record("backup", repo.host, repo.repository, command, out or err,
                                  rc=rc, name="snapshots")
            if rc == 0:
                snaps = json.loads(out or "[]")
                evidence.fact(repo.host, "backup.encrypted", True, rid,
                              "restic repositories are always encrypted (AES-256)")
                if snaps:
                    newest = max(snaps, key=lambda s: s["time"])
                    age = round((now - parse_time(newest["time"])).total_seconds() / 3600, 2)
                    evidence.fact(repo.host, "backup.last_snapshot_age_h", age, rid,
                                  f"snapshot {newest.get('short_id', '')} at {newest['time']}")
                else:
                    evidence.fact(repo.host, "backup.last_snapshot_age_h", None, rid,
                                  "never: no snapshot in the repository")
            if self.run_check:
                rc, out, err = self._restic(repo, "check")
                rid = evidence.record("backup", repo.host, repo.repository,
                                      f"restic -r {repo.repository} check", out + err, rc=rc,
                                      name="check")
                evidence.fact(repo.host, "backup.check_ok", rc == 0, rid,
                              (out + err).strip().splitlines()[-1] if (out + err).strip()
                              else f"rc={rc}")
        self._drills(model, evidence, now)

    def _drills(self, model: SiteModel, evidence: Evidence, now: datetime) -> None:
        if self.drill_dir is None or not self.drill_dir.is_dir():
            evidence.notes.append(f"backup: no DR drill records in {self.drill_dir}")
            return
        latest: dict[str, tuple[datetime, Path, dict[str, object]]] = {}
        for path in sorted(self.drill_dir.glob("*.json")):
            try:
                rec = strict_loads(path.read_text(encoding="utf-8"))
                when = parse_time(str(rec["drill_time"]))
                host = str(rec["host"])
            except (ValueError, KeyError, OSError) as exc:
                evidence.notes.append(f"backup: unreadable drill record {path}: {exc}")
                continue
            if host not in latest or when > latest[host][0]:
                latest[host] = (when, path, rec)
        for host, (when, path, rec) in latest.items():
            if host not in model.hosts:
                continue
            rid = evidence.record("backup", host, str(path), f"read {path.name}",
                                  json.dumps(rec, ensure_ascii=False), ran_at=iso(now),
                                  name="drill")
            evidence.fact(host, "dr.last_drill_age_days",
                          round((now - when).total_seconds() / 86400, 2), rid,
                          f"drill {iso(when)} rpo={rec.get('rpo_seconds')}s "
                          f"rto={rec.get('rto_seconds')}s files={rec.get('files_verified')}")
            mismatches = rec.get("mismatches") or []
            count = len(mismatches) if isinstance(mismatches, list) else 0
            evidence.fact(host, "dr.last_result", str(rec.get("result", "")), rid,
                          f"result={rec.get('result')} mismatches={count}")
