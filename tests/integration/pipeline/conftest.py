"""A real 3-node nats-server cluster (JetStream, R3) in network namespaces, for the bus tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from natscluster import NatsCluster


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nodes, each in its own network namespace with its own store_dir; module-wide."""
    cluster = NatsCluster(Path(tmp_path_factory.mktemp("nats")), netns=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def bus_prefix() -> str:
    """A subject and stream prefix of the test's own (streams do not leak between tests)."""
    return f"t{secrets.token_hex(4)}"
