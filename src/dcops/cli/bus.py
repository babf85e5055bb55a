"""`--bus TARGET` for collectors and detection: the SQLite spool (default) or NATS JetStream.

TARGET is a spool path or `sqlite:///path` (the embedded default, `<state>/spool.db`), or a
`nats://h1:4222,h2:4222?replicas=3` / `tls://...` URL (options in docs/scale.md). `$DCOPS_BUS`
gives it when the option is absent. A collector whose bus is NATS stores and forwards: events go
to a local outbox (`--spool`, default `<state>/outbox.db`) and a thread forwards them, so the
collector keeps accepting while the bus is unreachable (dcops.pipeline.forward).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dcops.cli.common import state_dir
from dcops.errors import ConfigError

if TYPE_CHECKING:
    from dcops.pipeline import SqliteSpool
    from dcops.pipeline.forward import StoreAndForward
    from dcops.pipeline.jetstream import JetStreamConfig

BusOpt = Annotated[
    str | None,
    typer.Option(
        "--bus", envvar="DCOPS_BUS", metavar="TARGET",
        help="Event bus: a spool path or sqlite:///path (default <state>/spool.db), or "
        "nats://host:4222[,host:4222...][?options] / tls://... (NATS JetStream; a collector "
        "then stores and forwards through its local outbox, --spool, default "
        "<state>/outbox.db).",
    ),
]
# Seconds a stopping collector keeps forwarding its outbox (what is left goes at the next start).
FORWARD_DRAIN = 2.0


def nats_config(bus: str) -> JetStreamConfig:
    """Parse and check a nats:// or tls:// target now (files named in it must exist)."""
    from dcops.pipeline.jetstream import JetStreamConfig

    try:
        cfg = JetStreamConfig.from_url(bus)
    except ConfigError as exc:
        raise ConfigError(f"--bus: {exc}") from exc
    cfg.ssl_context()  # CA, certificate and key files exist and load
    cfg.password()  # the password file is readable
    return cfg


def spool_path(bus: str | None, spool: Path | None) -> Path:
    """The SQLite spool a non-NATS `--bus` (or `--spool`, or the default) names."""
    if bus is None or not bus.strip():
        if bus is not None:
            raise ConfigError("--bus: empty (expected a spool path, sqlite:///path, nats:// "
                              "or tls:// URL)")
        return spool or state_dir() / "spool.db"
    if spool is not None:
        raise ConfigError(f"--bus {bus} and --spool {spool} both name the spool: give one "
                          "(--spool names the outbox when --bus is nats:// or tls://)")
    text = bus.strip()
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise ConfigError(f"--bus {bus!r}: expected sqlite:///absolute/path.db")
        return Path(path)
    if "://" in text:
        raise ConfigError(f"--bus {bus!r}: expected a spool path, sqlite:///path, "
                          "nats://host:port or tls://host:port")
    return Path(text)


def collector_sink(
    bus: str | None, spool: Path | None, max_backlog: int = 1_000_000, *, source: str = "",
    detect: bool = False,
) -> SqliteSpool | StoreAndForward:
    """Where a collector's events go: the spool, or an outbox forwarded to NATS JetStream.

    `--detect` runs detection on the local spool; with a NATS bus, `dcops detect run` does.
    """
    from dcops.pipeline import SqliteSpool, is_nats

    if bus is None or not is_nats(bus.strip()):
        return SqliteSpool(spool_path(bus, spool), max_backlog=max_backlog)
    if detect:
        raise ConfigError("--detect with a nats:// bus: run detection as `dcops detect run "
                          "--bus <the same URL>` (the collector only forwards)")
    from dcops.pipeline.forward import StoreAndForward
    from dcops.pipeline.jetstream import BusUnavailableError, JetStreamBus

    cfg = nats_config(bus.strip())
    outbox = SqliteSpool(spool or state_dir() / "outbox.db", max_backlog=max_backlog)
    saf = StoreAndForward(outbox, lambda: JetStreamBus(cfg),
                          unavailable=(BusUnavailableError,),
                          keep_seconds=cfg.duplicate_window)
    saf.start()
    Console(stderr=True).print(
        f"{source or 'collector'}: bus {','.join(cfg.servers)} through the outbox {outbox.path} "
        "(store and forward)", highlight=False)
    return saf


def close_sink(sink: SqliteSpool | StoreAndForward, source: str) -> None:
    """Close the spool, or forward what is left for FORWARD_DRAIN seconds and say what stays."""
    from dcops.pipeline.forward import StoreAndForward

    if not isinstance(sink, StoreAndForward):
        sink.close()
        return
    left = sink.close(FORWARD_DRAIN)
    st = sink.stats
    msg = f"{source}: {st.forwarded} events forwarded to the bus"
    if left:
        msg += (f"; {left} stay in the outbox {sink.path} and are forwarded at the next start"
                + (f" (last bus error: {st.last_error})" if st.last_error else ""))
    Console(stderr=True).print(msg, highlight=False)
    sink.check()
