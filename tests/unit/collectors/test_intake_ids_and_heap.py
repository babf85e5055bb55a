"""Event ids: the same digest as hashing part by part, and, for live intake, a prefix that sorts
by receive time; the collector's malloc and cycle-collector tuning."""

from __future__ import annotations

import enum
import gc
import hashlib
from datetime import UTC, datetime

import pytest

from dcops.collectors.heap import GC_THRESHOLDS, batch_gc, keep_heap
from dcops.collectors.parsers import Normaliser
from dcops.model.event import Event


def _part_by_part(*parts: str | bytes | int) -> str:
    """The id as it was computed before (one update per part, then 0x1f)."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


class _Kind(enum.StrEnum):
    A = "a"


class _Raw(bytes):
    pass


@pytest.mark.parametrize("parts", [
    ("syslog", "web1", "<38>x", "10.0.0.1", "1764737000.25", "7"), ("a", 1, b"x\xff"),
    ("s", "\udcff", 3.5), (), ("",), ("", ""), (1, 2), (b"",), (True,), (_Kind.A, "b"),
    (bytearray(b"q"), "z"), (_Raw(b"k"), 2),
])
def test_ids_keep_their_digest(parts: tuple[str | bytes | int, ...]) -> None:
    assert Event.make_id(*parts) == _part_by_part(*parts)


def test_a_receive_time_prefix_orders_ids_and_keeps_them_stable() -> None:
    t0, t1 = 1764737000.125, 1764737000.126
    a = Event.make_id("syslog", "x", prefix=Event.order_prefix(t0))
    b = Event.make_id("syslog", "x", prefix=Event.order_prefix(t1))
    assert len(a) == len(b) == 32
    assert a < b  # later receive time, later id, whatever the hash
    assert a[12:] == b[12:] == _part_by_part("syslog", "x")[12:]
    assert a == Event.make_id("syslog", "x", prefix=Event.order_prefix(t0))  # redelivery: same
    assert Event.order_prefix(-5) == "0" * 12
    assert Event.order_prefix(1e300) == "f" * 12


def test_the_normaliser_uses_the_prefix_only_when_given() -> None:
    line = "<38>Nov 22 05:00:01 web1 sshd[1]: Failed password for x from 10.0.0.1 port 22 ssh2"
    now = datetime(2026, 11, 22, 5, 0, 2, tzinfo=UTC)
    norm = Normaliser("syslog")
    plain = norm.line(line, id_parts=("10.0.0.9", "1.5", "1"), received=now, peer="10.0.0.9")[0]
    pre = Event.order_prefix(now.timestamp())
    ordered = norm.line(line, id_parts=("10.0.0.9", "1.5", "1"), received=now, peer="10.0.0.9",
                        id_prefix=pre)[0]
    assert ordered.id == pre + plain.id[12:]
    assert ordered.fields == plain.fields


def test_malloc_tuning_takes_on_glibc() -> None:
    assert keep_heap() is True  # this machine's libc is glibc: every mallopt call accepted


class _Shown(str):
    def __str__(self) -> str:
        return "shown"


def test_a_str_subclass_is_hashed_by_its_text() -> None:
    """Text is hashed by its value, as str.join reads it, not by a subclass's __str__ (no caller
    passes such a part), whether the other parts are text or not."""
    assert Event.make_id(_Shown("value"), "b") == _part_by_part("value", "b")
    assert Event.make_id(_Shown("value"), 1) == _part_by_part("value", 1)
    assert Event.make_id(_Shown("value"), b"x") == _part_by_part("value", b"x")


def test_batch_gc_freezes_start_up_and_raises_the_thresholds() -> None:
    old = gc.get_threshold()
    try:
        batch_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 1000  # the modules and objects of start-up
        cycle: list[object] = []
        cycle.append(cycle)
        ref = id(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles are still collected, only less often
        assert ref not in map(id, gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)
