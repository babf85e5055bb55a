"""The Bus contract against a real 3-node JetStream cluster (network namespaces), R3 streams, on
a bus of one partition and on one partitioned by host (`partitions=3`: a plain reader of it still
sees every event, as the contract says)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from natscluster import NatsCluster

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "pipeline"))  # the contract
from bus_contract import CONTRACT, ContractBus, Opener

from dcops.pipeline import open_bus
from dcops.pipeline.jetstream import JetStreamBus

pytestmark = pytest.mark.integration


@pytest.fixture(params=["", "&partitions=3"], ids=["one-partition", "partitioned"])
def opener(nats_cluster: NatsCluster, bus_prefix: str,
           request: pytest.FixtureRequest) -> Iterator[Opener]:
    opened: list[JetStreamBus] = []

    def make(**options: Any) -> ContractBus:
        url = f"{nats_cluster.url}?replicas=3&prefix={bus_prefix}{request.param}"
        bus = nats_cluster.run(lambda: open_bus(url, publish_timeout=30, **options))
        assert isinstance(bus, JetStreamBus)
        opened.append(bus)
        return bus

    yield make
    for b in opened:
        b.close()


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(check: Callable[[Opener], None], opener: Opener) -> None:
    check(opener)


def test_streams_are_r3_with_the_configured_window(nats_cluster: NatsCluster,
                                                   bus_prefix: str) -> None:
    bus = nats_cluster.run(lambda: JetStreamBus(f"{nats_cluster.url}?replicas=3&prefix="
                                                f"{bus_prefix}&duplicate_window=90s&max_age=2d"))
    try:
        streams = {s["name"]: s for a in nats_cluster.jsz(nats_cluster.nodes[0])
                   .get("account_details", [])  # type: ignore[union-attr]
                   for s in a.get("stream_detail", [])}
        ev = streams[bus.config.events_stream]
        assert ev["config"]["num_replicas"] == 3
        assert ev["config"]["duplicate_window"] == 90 * 10**9
        assert ev["config"]["max_age"] == 2 * 86400 * 10**9
        assert ev["config"]["subjects"] == [f"{bus_prefix}.events.>"]
        assert len(ev["cluster"]["replicas"]) == 2  # a leader and two replicas
    finally:
        bus.close()


def test_a_message_not_ours_is_kept_raw_by_fetch_and_replay(nats_cluster: NatsCluster,
                                                          bus_prefix: str) -> None:
    """Anyone allowed to publish on the events subjects can put bytes there that are no dcops
    event: fetch hands them on raw (never dropped) and a replay after a restart goes past them."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    import nats

    from dcops.model.event import Event, LogSource

    bus = nats_cluster.run(lambda: JetStreamBus(f"{nats_cluster.url}?replicas=3&prefix="
                                                f"{bus_prefix}", publish_timeout=30))
    try:
        now = datetime.now(UTC)
        bus.publish([Event(id="ours-1", timestamp=now, source="syslog",
                           logsource=LogSource("linux", "sshd"), fields={"n": 1})])

        async def foreign() -> None:
            nc = await nats.connect([f"nats://{n.host}:{n.port}" for n in nats_cluster.nodes])
            await nc.jetstream().publish(f"{bus_prefix}.events.site.syslog", b"\xff{not an event")
            await nc.close()

        nats_cluster.run(lambda: asyncio.run(foreign()))
        bus.register("c")
        got = bus.fetch("c", 10)
        assert len(got) == 2 and got[0][1].id == "ours-1"
        raw = got[1][1]
        assert raw.source == "bus" and not raw.parsed and "not an event" in raw.raw
        bus.ack("c", got[-1][0])
        replayed = bus.replay("c", now - timedelta(minutes=5))
        assert {e.id for e in replayed} == {"ours-1", raw.id}
    finally:
        bus.close()
