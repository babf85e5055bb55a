"""The `Bus` contract, written once and run against every engine (SQLite spool, JetStream).

Each check takes an `Opener`: calling it opens the engine's bus on the same underlying store
(so a second call is a reopen, as after a restart), with optional engine options (max_backlog).
Positions are whatever the engine hands out: checks only use positions a fetch returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from dcops.model.event import Event, LogSource
from dcops.pipeline.bus import CursorTakenError

# Event times close to now (a bus may look events up by publish time around them).
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SITES = ("Đồng Nai", "DC phụ", "")


class ContractBus(Protocol):
    """What the contract exercises: Bus, Checkpoints, dead letters and housekeeping."""

    def publish(self, events: Sequence[Event]) -> None: ...
    def fetch(self, consumer: str, limit: int) -> list[tuple[int, Event]]: ...
    def ack(self, consumer: str, position: int, *, owner: str | None = None) -> None: ...
    def claim(self, consumer: str, owner: str) -> int: ...
    def fetch_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[tuple[int, Event]]: ...
    def cursor(self, consumer: str) -> int: ...
    def save_state(self, consumer: str, position: int, state: bytes) -> None: ...
    def load_state(self, consumer: str) -> tuple[int, bytes] | None: ...
    def replay(self, consumer: str, since: datetime) -> list[Event]: ...
    def last_acked_time(self, consumer: str) -> datetime | None: ...
    def load_checkpoint(self, name: str) -> str | None: ...
    def save_checkpoint(self, name: str, value: str) -> None: ...
    def update_checkpoint(
        self, name: str, change: Callable[[str | None], str | None]
    ) -> str | None: ...
    def register(self, consumer: str) -> None: ...
    def count(self) -> int: ...
    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None: ...
    def dead_letter_count(self) -> int: ...
    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]: ...
    def close(self) -> None: ...


Opener = Callable[..., ContractBus]


def ev(i: int, minutes: float = 0, source: str = "syslog", site: str | None = None) -> Event:
    """Event number i; `site` (when given) goes into site.name (a partition of its own)."""
    fields: dict[str, Any] = {"user.name": "u", "n": i, "tags": ["a", "ă"], "nested": {"x": i}}
    if site is not None:
        fields["site.name"] = site
    return Event(id=f"e{i}", timestamp=T0 + timedelta(minutes=minutes), source=source,
                 logsource=LogSource("linux", "sshd"), fields=fields,
                 raw=f"<38>Dec  2 10:00:00 h sshd[1]: line {i} — Đăng nhập")


def ids(batch: Sequence[tuple[int, Event]]) -> list[str]:
    return [e.id for _, e in batch]


def check_roundtrip_and_order(open_bus: Opener) -> None:
    """Events come back equal, in publish order, positions strictly increasing."""
    bus = open_bus()
    events = [ev(i, minutes=i, source=("syslog", "snmp_trap")[i % 2], site=SITES[i % 3])
              for i in range(12)]
    bus.publish(events[:5])
    bus.publish(events[5:])
    got = bus.fetch("c", 100)
    assert ids(got) == [e.id for e in events]
    positions = [p for p, _ in got]
    assert positions == sorted(set(positions)) and positions[0] > 0
    assert [e for _, e in got] == events
    assert bus.count() == 12


def check_order_per_partition(open_bus: Opener) -> None:
    """Within each (site, source) partition, events keep their publish order."""
    bus = open_bus()
    events = [ev(i, source=("syslog", "wazuh", "snmp_trap")[i % 3], site=SITES[(i // 3) % 3])
              for i in range(60)]
    for k in range(0, 60, 7):
        bus.publish(events[k:k + 7])
    got = bus.fetch("c", 1000)
    by_part: dict[tuple[str, str], list[int]] = {}
    for _, e in got:
        by_part.setdefault((e.fields.get("site.name", ""), e.source), []).append(e.fields["n"])
    assert sum(len(v) for v in by_part.values()) == 60
    for seq in by_part.values():
        assert seq == sorted(seq)


def check_idempotent_publish(open_bus: Opener) -> None:
    """The same event id twice (same batch or a retried one) is stored once."""
    bus = open_bus()
    bus.publish([ev(1), ev(2)])
    bus.publish([ev(2), ev(3)])
    bus.publish([ev(1)])
    bus.publish([ev(4), ev(4)])
    assert ids(bus.fetch("c", 10)) == ["e1", "e2", "e3", "e4"]
    assert bus.count() == 4


def check_at_least_once(open_bus: Opener) -> None:
    """Unacked events are fetched again, also after a reopen (a crash before the ack)."""
    bus = open_bus()
    bus.publish([ev(i) for i in range(4)])
    first = bus.fetch("c", 2)
    assert ids(first) == ["e0", "e1"]
    assert ids(bus.fetch("c", 2)) == ["e0", "e1"]  # fetch alone does not move the cursor
    bus.ack("c", first[-1][0])
    second = bus.fetch("c", 10)
    assert ids(second) == ["e2", "e3"]
    bus.close()
    bus = open_bus()  # crashed before acking e2, e3
    assert ids(bus.fetch("c", 10)) == ["e2", "e3"]


def check_cursor_monotonic_and_durable(open_bus: Opener) -> None:
    """A cursor never goes back and survives a reopen; consumers are independent."""
    bus = open_bus()
    bus.publish([ev(i) for i in range(5)])
    pos = [p for p, _ in bus.fetch("c", 10)]
    assert bus.cursor("c") == 0
    bus.ack("c", pos[2])
    bus.ack("c", pos[1])  # backwards: ignored
    assert bus.cursor("c") == pos[2]
    bus.ack("other", pos[0])
    bus.close()
    bus = open_bus()
    assert bus.cursor("c") == pos[2]
    assert ids(bus.fetch("c", 10)) == ["e3", "e4"]
    assert ids(bus.fetch("other", 10)) == ["e1", "e2", "e3", "e4"]
    assert bus.cursor("never-seen") == 0


def check_claimed_cursor_moves_only_for_its_owner(open_bus: Opener) -> None:
    """After claim(c, owner) an ack naming another owner raises CursorTakenError and moves
    nothing; the owner's acks move it; a new claim (the partition's next worker) fences the
    old owner out; the claim survives a reopen; a plain ack is not fenced."""
    bus = open_bus()
    bus.publish([ev(i) for i in range(6)])
    pos = [p for p, _ in bus.fetch("g/p0", 10)]
    assert bus.claim("g/p0", "wA.1") == 0  # created at the start
    bus.ack("g/p0", pos[1], owner="wA.1")
    assert bus.claim("g/p0", "wA.1") == pos[1]  # claiming again: a no-op
    assert bus.claim("g/p0", "wB.1") == pos[1]  # wA stalled past its lease, wB took over
    with pytest.raises(CursorTakenError, match=r"g/p0.*claimed by 'wB\.1'"):
        bus.ack("g/p0", pos[4], owner="wA.1")
    assert bus.cursor("g/p0") == pos[1]
    with pytest.raises(CursorTakenError, match="claimed by 'no one'"):
        bus.ack("fresh", pos[0], owner="wA.1")  # never claimed: nobody holds it
    bus.ack("g/p0", pos[2], owner="wB.1")
    bus.ack("g/p0", pos[0], owner="wB.1")  # backwards: ignored, as for plain acks
    bus.close()
    bus = open_bus()
    assert bus.cursor("g/p0") == pos[2]
    with pytest.raises(CursorTakenError):  # the claim survived the reopen
        bus.ack("g/p0", pos[3], owner="wA.1")
    bus.ack("g/p0", pos[3])  # no owner named: a plain runner's ack, not fenced
    assert bus.cursor("g/p0") == pos[3]
    assert ids(bus.fetch("g/p0", 10)) == ["e4", "e5"]


def check_fetch_after_upto(open_bus: Opener) -> None:
    """fetch_after reads from any position, stops at `upto` and at `limit`."""
    bus = open_bus()
    bus.publish([ev(i) for i in range(6)])
    pos = [p for p, _ in bus.fetch_after(0, 100)]
    assert len(pos) == 6
    assert ids(bus.fetch_after(pos[1], 10, upto=pos[3])) == ["e2", "e3"]
    assert ids(bus.fetch_after(pos[3], 10, upto=pos[3])) == []
    assert ids(bus.fetch_after(pos[3], 1)) == ["e4"]
    assert ids(bus.fetch_after(pos[4], 10)) == ["e5"]
    assert bus.fetch_after(pos[5], 10) == []
    assert ids(bus.fetch_after(0, 2)) == ["e0", "e1"]  # back to the start
    bus.publish([ev(6)])
    assert ids(bus.fetch_after(pos[5], 10)) == ["e6"]  # new events after being caught up


def check_replay_by_event_time(open_bus: Opener) -> None:
    """replay gives acked events at or after `since` (event time), in order."""
    bus = open_bus()
    assert bus.last_acked_time("c") is None
    bus.publish([ev(i, minutes=i) for i in range(10)])
    got = bus.fetch("c", 100)
    bus.ack("c", got[7][0])  # e0..e7 handled, newest acked at minute 7
    last = bus.last_acked_time("c")
    assert last == T0 + timedelta(minutes=7)
    assert [e.id for e in bus.replay("c", last - timedelta(minutes=2))] == ["e5", "e6", "e7"]
    assert bus.replay("new-consumer", T0) == []
    bus.close()
    bus = open_bus()
    assert bus.last_acked_time("c") == T0 + timedelta(minutes=7)


def check_last_acked_time_is_newest(open_bus: Opener) -> None:
    """last_acked_time is the newest event time acked, not the time of the last event."""
    bus = open_bus()
    bus.publish([ev(0, minutes=5), ev(1, minutes=9), ev(2, minutes=1)])
    got = bus.fetch("c", 10)
    bus.ack("c", got[-1][0])
    assert bus.last_acked_time("c") == T0 + timedelta(minutes=9)


def check_state(open_bus: Opener) -> None:
    """save_state/load_state keep the latest state with its position, across a reopen."""
    bus = open_bus()
    assert bus.load_state("detect") is None
    bus.publish([ev(i) for i in range(3)])
    pos = [p for p, _ in bus.fetch("detect", 10)]
    bus.save_state("detect", pos[0], b"one")
    big = bytes(range(256)) * 8192  # 2 MiB: larger than one NATS message
    bus.save_state("detect", pos[2], big)
    bus.save_state("other/worker 1", pos[1], b"")
    bus.close()
    bus = open_bus()
    assert bus.load_state("detect") == (pos[2], big)
    assert bus.load_state("other/worker 1") == (pos[1], b"")


def check_checkpoints(open_bus: Opener) -> None:
    """Checkpoints keep their latest value under any name, across a reopen."""
    bus = open_bus()
    names = ["logfile:/var/log/auth.log", "Đồng Nai.tailer", "a b/c=d", "x"]
    assert bus.load_checkpoint(names[0]) is None
    for n in names:
        bus.save_checkpoint(n, "1")
        bus.save_checkpoint(n, f"2:{n}")
    bus.close()
    bus = open_bus()
    assert [bus.load_checkpoint(n) for n in names] == [f"2:{n}" for n in names]


def check_update_checkpoint_is_compare_and_set(open_bus: Opener) -> None:
    """update_checkpoint applies change(old) atomically: two buses adding 1 in turn 40 times
    each end at 80 (none lost to a race); None from change leaves the value (worker leases)."""
    a, b = open_bus(), open_bus()
    errors: list[BaseException] = []

    def add(bus: ContractBus) -> None:
        try:
            for _ in range(40):
                bus.update_checkpoint("lease/g/p0", lambda old: str(int(old or "0") + 1))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    seen = []
    for _ in range(30):
        seen.append(a.load_checkpoint("lease/g/p0"))
        if seen[-1] == "80":
            break
        time.sleep(0.1)
    assert seen[-1] == "80", seen
    assert b.update_checkpoint("lease/g/p0", lambda old: None) == "80"
    assert a.update_checkpoint("new", lambda old: "x" if old is None else None) == "x"
    assert b.update_checkpoint("new", lambda old: "x" if old is None else "y") == "y"


def check_backpressure(open_bus: Opener) -> None:
    """publish blocks while the slowest registered consumer lags max_backlog events."""
    bus = open_bus(max_backlog=3)
    bus.register("c")
    bus.publish([ev(1), ev(2), ev(3)])
    done = threading.Event()
    errors: list[BaseException] = []

    def publisher() -> None:
        try:
            bus.publish([ev(4)])
        except BaseException as exc:  # reported below
            errors.append(exc)
        done.set()

    t = threading.Thread(target=publisher)
    t.start()
    assert not done.wait(1.5)  # blocked: the consumer has not caught up
    got = bus.fetch("c", 10)
    bus.ack("c", got[1][0])
    assert done.wait(15)
    t.join()
    assert not errors
    assert bus.count() == 4


def check_no_limit_without_consumer(open_bus: Opener) -> None:
    """With no consumer registered, publishing never blocks (collect first, detect later)."""
    bus = open_bus(max_backlog=2)
    bus.publish([ev(i) for i in range(5)])
    bus.publish([ev(i) for i in range(5, 9)])
    assert bus.count() == 9


def check_concurrent_publishers(open_bus: Opener) -> None:
    """Two threads publishing overlapping ids: every event stored exactly once."""
    bus = open_bus()

    def worker(start: int) -> None:
        for k in range(start, start + 200, 20):
            bus.publish([ev(i) for i in range(k, k + 20)])

    threads = [threading.Thread(target=worker, args=(s,)) for s in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = bus.fetch_after(0, 10_000)
    assert sorted(e.fields["n"] for _, e in got) == list(range(300))
    assert [p for p, _ in got] == sorted({p for p, _ in got})


def check_dead_letters(open_bus: Opener) -> None:
    """dead_letter keeps the raw bytes and the reason; events are not affected."""
    bus = open_bus()
    assert bus.dead_letter_count() == 0
    bus.dead_letter("syslog_tcp", b"\xff\xfe raw \x00", "ValueError: bad", "e9")
    bus.dead_letter("snmp_trap", b"", "too deep")
    assert bus.dead_letter_count() == 2
    newest = bus.dead_letters(10)
    assert [d["source"] for d in newest] == ["snmp_trap", "syslog_tcp"]
    assert newest[1]["raw"] == b"\xff\xfe raw \x00"
    assert newest[1]["reason"] == "ValueError: bad" and newest[1]["event_id"] == "e9"
    assert len(bus.dead_letters(1)) == 1
    assert bus.count() == 0


CONTRACT: tuple[Callable[[Opener], None], ...] = (
    check_roundtrip_and_order,
    check_order_per_partition,
    check_idempotent_publish,
    check_at_least_once,
    check_cursor_monotonic_and_durable,
    check_claimed_cursor_moves_only_for_its_owner,
    check_fetch_after_upto,
    check_replay_by_event_time,
    check_last_acked_time_is_newest,
    check_state,
    check_checkpoints,
    check_update_checkpoint_is_compare_and_set,
    check_backpressure,
    check_no_limit_without_consumer,
    check_concurrent_publishers,
    check_dead_letters,
)
