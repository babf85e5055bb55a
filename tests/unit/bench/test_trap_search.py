"""snmp_traps.search: the highest zero-loss rate, to 10 %, against a receiver with a known limit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "bench"))

from snmp_traps import Step, search


def receiver(limit: int, sender_max: int = 10**9, seconds: float = 1.0
             ) -> tuple[Callable[[int], Step], list[int]]:
    """A step outcome for a receiver that holds `limit`/s and a sender that paces `sender_max`/s."""
    tried: list[int] = []

    def probe(rate: int) -> Step:
        tried.append(rate)
        sent = int(rate * seconds)
        took = sent / min(rate, sender_max)
        return Step(rate, sent, sent if rate <= limit else sent - 1, took)
    return probe, tried


@pytest.mark.parametrize(("limit", "start"), [(5600, 1000), (900, 2000), (1000, 1000), (120, 4000)])
def test_search_finds_the_limit_within_ten_percent(limit: int, start: int) -> None:
    probe, tried = receiver(limit)
    got, limited = search(probe, start)
    assert not limited
    assert got <= limit  # never a rate that lost traps
    assert got >= limit * 0.9, (got, tried)


def test_search_reports_a_sender_limited_run() -> None:
    probe, _ = receiver(10**6, sender_max=3000)
    got, limited = search(probe, 1000)
    assert limited and got == 2000  # 4000/s could not be paced: the last clean paced rate


def test_search_returns_zero_when_nothing_is_clean() -> None:
    probe, _ = receiver(10)
    assert search(probe, 1000) == (0, False)
