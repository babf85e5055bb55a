"""Split the devices among n pollers by rendezvous (highest random weight) hashing.

Every device goes to the shard whose hash(shard, device) is highest. The hash depends only on
the shard number and the device name, so going from n to n+1 shards moves exactly the devices
whose score for the new shard beats their old best (about 1/(n+1) of them), all to the new
shard, and nothing else moves. Shards are numbered 1..n (`--shard i/n`); add pollers at the end.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from dcops.errors import ConfigError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
MAX_SHARDS = 1024  # far beyond one poller per 2 cores and ~200 devices; catches typos


@dataclass(frozen=True, slots=True)
class Shard:
    """This poller's place: shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, device: str) -> bool:
        """True if this shard polls `device`."""
        return owner(device, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """`i/n` with 1 <= i <= n (shards are numbered from 1)."""
    m = _SPEC.fullmatch(text)
    if m is None:
        raise ConfigError(f"{text!r}: expected I/N, e.g. 1/2 (shard I of N, from 1)")
    index, count = int(m[1]), int(m[2])
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"{text!r}: expected N between 1 and {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise ConfigError(f"{text!r}: expected I between 1 and N={count} "
                          "(shards are numbered from 1)")
    return Shard(index, count)


def score(shard: int, device: str) -> int:
    """The weight of `device` on `shard`: 64 bits of BLAKE2b, stable across runs and hosts."""
    digest = hashlib.blake2b(f"{shard}\x00{device}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(device: str, count: int) -> int:
    """The shard (1..count) that polls `device`."""
    return max(range(1, count + 1), key=lambda s: (score(s, device), -s))


T = TypeVar("T")


def select(items: Iterable[T], shard: Shard, name: str = "name") -> list[T]:
    """The items (devices) of `shard`, in their given order, keyed by attribute `name`."""
    return [it for it in items if shard.owns(str(getattr(it, name)))]


def shard_targets(listen: tuple[str, int], count: int) -> list[str]:
    """HOST:PORT of shards 1..count on one host: shard I listens on PORT + I - 1."""
    host, port = listen
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"--shards {count}: expected between 1 and {MAX_SHARDS}")
    if port + count - 1 > 65535:
        raise ConfigError(f"--listen {host}:{port}: shard {count} would need port "
                          f"{port + count - 1} (expected at most 65535)")
    return [f"{host}:{port + i}" for i in range(count)]


def scrape_configs(targets: list[str]) -> list[dict[str, object]]:
    """Prometheus static_configs of job dcops-snmp: one target per shard, labels shard/shards.

    The SnmpShardDown alert matches targets by these labels and names the devices from the
    shard's own series with the same labels.
    """
    n = len(targets)
    return [{"targets": [t], "labels": {"shard": str(i), "shards": str(n)}}
            for i, t in enumerate(targets, 1)]
