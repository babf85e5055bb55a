"""At 100 hosts: identical observations are one report row; SSH sessions are bounded."""

from __future__ import annotations

import threading
import time

import pytest

from dcops.compliance.collect.ssh import SshCollector, _run_bounded
from dcops.compliance.findings import Observation
from dcops.compliance.report import observation_rows


def _obs(host: str, result: str = "pass", observed: object = "no", t: str = "") -> Observation:
    return Observation(host, result, observed, detail="", record=f"r-{host}",
                       source=f"ssh ansible@{host}", command="sshd -T", time=t)


def test_identical_observations_share_a_row_and_keep_every_subject() -> None:
    obs = [_obs(f"node{i:02}", t=f"2026-12-02T10:00:{i:02}Z") for i in range(40)]
    obs.insert(7, _obs("odd1", "fail", "yes", "2026-12-02T10:01:00Z"))
    obs.append(_obs("odd2", "fail", "yes", "2026-12-02T10:01:05Z"))
    rows = observation_rows(obs)
    assert [(r.result, r.observed, len(r.subjects)) for r in rows] == \
           [("pass", "no", 40), ("fail", "yes", 2)]
    assert rows[0].subjects[:2] == ("node00", "node01") and rows[1].subjects == ("odd1", "odd2")
    assert (rows[0].first, rows[0].last) == ("2026-12-02T10:00:00Z", "2026-12-02T10:00:39Z")
    assert len(rows[0].sources) == 40  # each host's own address is kept
    assert observation_rows([_obs("a", observed=["x", 1]), _obs("b", observed=["x", 2])]) \
        [1].subjects == ("b",)


def test_ssh_sessions_are_bounded_and_each_failure_stays_with_its_host() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def one(conn: int) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if conn == 5:
            raise OSError("connection refused")
        return f"ok {conn}"

    got = _run_bounded(list(range(12)), one, 3)
    assert peak[0] == 3
    assert isinstance(got[5], OSError) and got[4] == "ok 4" and len(got) == 12


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SshCollector([], concurrency=0)
