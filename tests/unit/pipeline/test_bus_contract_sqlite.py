"""The Bus contract against the SQLite spool (the embedded default), and the engine factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_contract import CONTRACT, ContractBus, Opener

from dcops.errors import ConfigError
from dcops.pipeline import SqliteSpool, is_nats, open_bus


@pytest.fixture
def opener(tmp_path: Path) -> Iterator[Opener]:
    opened: list[SqliteSpool] = []

    def make(**options: Any) -> ContractBus:
        bus = open_bus(f"sqlite://{tmp_path / 'spool.db'}", poll=0.01, **options)
        assert isinstance(bus, SqliteSpool)
        opened.append(bus)
        return bus

    yield make
    for b in opened:
        b.close()


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(check: Callable[[Opener], None], opener: Opener) -> None:
    check(opener)


def test_open_bus_chooses_the_engine(tmp_path: Path) -> None:
    for target in (tmp_path / "a.db", str(tmp_path / "b.db"), f"sqlite://{tmp_path}/c.db"):
        bus = open_bus(target)
        assert isinstance(bus, SqliteSpool)
        bus.close()
    assert is_nats("nats://127.0.0.1:4222") and is_nats("tls://h:4222")
    assert not is_nats("/var/lib/dcops/spool.db") and not is_nats(tmp_path)
    for bad in ("kafka://h:9092", "sqlite://relative.db", " "):
        with pytest.raises(ConfigError):
            open_bus(bad)
