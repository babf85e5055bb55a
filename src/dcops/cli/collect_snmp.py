"""CLI: `dcops collect snmp` (poller + /metrics) and `dcops collect traps` (trap receiver)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dcops.cli.bus import BusOpt, close_sink, collector_sink
from dcops.cli.common import VAULT_ENV
from dcops.collectors.heap import batch_gc
from dcops.errors import ConfigError
from dcops.model.event import Event
from dcops.model.sinks import EventSink

if TYPE_CHECKING:
    from dcops.collectors.snmp.shard import Shard
    from dcops.model.site import Device, SiteModel

DEFAULT_INVENTORY = Path("inventories/production")

InventoryOpt = Annotated[Path, typer.Option("-i", "--inventory",
                                            help="Inventory directory (Ansible YAML).")]
VaultOpt = Annotated[Path | None, typer.Option(
    "--vault-password-file", envvar=VAULT_ENV,
    help="Vault password file (default: the inventory's single .vault-pass-* file).")]
EventsOpt = Annotated[Path | None, typer.Option(
    "--events-out", help="Also append the events as JSON lines to this file.")]
SpoolOpt = Annotated[Path | None, typer.Option(
    "--spool", envvar="DCOPS_SPOOL",
    help="Event spool for the SOC pipeline (default <state>/spool.db); with a nats:// --bus, "
    "the local outbox (default <state>/outbox.db).")]
NoSpoolOpt = Annotated[bool, typer.Option(
    "--no-spool", help="Do not publish events to the SOC spool.")]


class _Fanout:
    """Publishes to every configured sink (spool, JSONL file)."""

    def __init__(self, sinks: list[EventSink]) -> None:
        self.sinks = sinks

    def publish(self, events: Sequence[Event]) -> None:
        for s in self.sinks:
            s.publish(events)

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Dead-letter in every sink that keeps dead letters (the spool)."""
        for s in self.sinks:
            dl = getattr(s, "dead_letter", None)
            if dl is not None:
                dl(source, raw, reason, event_id)


    def close(self, source: str) -> None:
        """Close the bus sink (a NATS one forwards what is left first)."""
        from dcops.pipeline import SqliteSpool
        from dcops.pipeline.forward import StoreAndForward

        for s in self.sinks:
            if isinstance(s, SqliteSpool | StoreAndForward):
                close_sink(s, source)


def _sink(spool: Path | None, no_spool: bool, events_out: Path | None,
          bus: str | None = None, source: str = "") -> _Fanout | None:
    """The event sink the CLI wires: the pipeline's bus (spool or NATS) and/or a JSONL file."""
    sinks: list[EventSink] = []
    if not no_spool:
        sinks.append(collector_sink(bus, spool, source=source))
    elif bus is not None:
        raise ConfigError("--bus with --no-spool: give one (--no-spool publishes nowhere)")
    if events_out:
        from dcops.collectors.snmp.events import JsonlSink

        sinks.append(JsonlSink(events_out))
    return _Fanout(sinks) if sinks else None


def _hostport(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        host, port = value, str(default_port)
    try:
        return host.strip("[]"), int(port)
    except ValueError as exc:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT") from exc


def _shard_option(value: str | None) -> str | None:
    """Check --shard I/N when the command line is parsed (a bad value is a usage error)."""
    if value is not None:
        from dcops.collectors.snmp.shard import parse_shard

        try:
            parse_shard(value)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
    return value


def _poll_list(model: SiteModel, inventory: Path, device: list[str] | None, shard: str | None,
               quiet: bool) -> tuple[list[Device], Shard | None]:
    """The devices this poller polls (--device, then its --shard) and its shard."""
    from dcops.collectors.snmp.shard import parse_shard, select

    devices = [d for d in model.devices.values() if not device or d.name in device]
    if device and (missing := set(device) - {d.name for d in devices}):
        raise ConfigError(f"--device {', '.join(sorted(missing))}: not in the inventory",
                          file=str(inventory))
    if not shard:
        return devices, None
    spec = parse_shard(shard)
    mine = select(devices, spec)
    if not quiet:
        Console(stderr=True).print(f"shard {spec}: {len(mine)} of {len(devices)} devices / "
                                   "thiết bị của phân vùng này", highlight=False)
    return mine, spec


def _monitoring_dir(inventory: Path) -> Path:
    for cand in (inventory.resolve().parent.parent / "monitoring", Path("monitoring")):
        if (cand / "snmp").is_dir():
            return cand
    return Path("monitoring")


def snmp(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    vault_password_file: VaultOpt = None,
    listen: Annotated[str, typer.Option(help="Serve /metrics on HOST:PORT.")] = "127.0.0.1:9716",
    once: Annotated[bool, typer.Option(help="Poll once, print a summary and exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between poll cycles.")] = 30.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each response.")] = 1.0,
    retries: Annotated[int, typer.Option(help="Retries per request.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Devices polled at once.")] = 64,
    profiles: Annotated[Path | None, typer.Option(
        help="Profiles file (default: monitoring/snmp/profiles.yml).")] = None,
    device: Annotated[list[str] | None, typer.Option(
        "--device", help="Poll only these devices (repeatable).")] = None,
    shard: Annotated[str | None, typer.Option(
        "--shard", metavar="I/N", callback=_shard_option,
        help="Poll only shard I of N (numbered from 1): devices split by rendezvous hashing "
        "of their names, every poller given the same N.")] = None,
    list_devices: Annotated[bool, typer.Option(
        "--list-devices", help="Print the devices this poller would poll (site/device, one "
        "a line; with --shard, that shard's) and exit without polling.")] = False,
    events_out: EventsOpt = None,
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    no_spool: NoSpoolOpt = False,
) -> None:
    """Poll the inventory's network devices over SNMP and serve Prometheus /metrics."""
    from prometheus_client import CollectorRegistry

    from dcops.collectors.snmp.metrics import SnmpMetrics
    from dcops.collectors.snmp.poller import Poller
    from dcops.collectors.snmp.profiles import load_profiles
    from dcops.collectors.snmp.service import MetricsServer, PollService
    from dcops.inventory import load_inventory

    model = load_inventory(inventory, vault_password_file)
    devices, spec = _poll_list(model, inventory, device, shard, list_devices)
    if list_devices:
        for d in sorted(devices, key=lambda d: (d.site, d.name)):
            typer.echo(f"{d.site}/{d.name}")
        return
    prof = load_profiles(profiles or _monitoring_dir(inventory) / "snmp" / "profiles.yml")
    poller = Poller(devices, prof, allow_v2c=model.settings.allow_snmp_v2c, timeout=timeout,
                    retries=retries, concurrency=concurrency)
    metrics = SnmpMetrics(prof, {s.name: str(s.kind) for s in model.sites.values()}, spec)
    sink = _sink(spool, no_spool, events_out, bus, "snmp")
    service = PollService(poller, metrics, sink)
    batch_gc()  # a cycle's responses and samples are not walked every 700 allocations
    console = Console(stderr=True)
    if once:
        try:
            samples = asyncio.run(service.cycle())
        finally:
            poller.close()
            if sink is not None:
                sink.close("snmp")
        for s in sorted(samples, key=lambda s: (s.device.site, s.device.name)):
            state = "[green]up[/]" if s.ok else f"[red]down[/] ({s.error_kind}: {escape(s.error)})"
            console.print(f"{s.device.site}/{s.device.name}: {state} {s.duration * 1000:.0f} ms")
        down = sum(1 for s in samples if not s.ok)
        if down:
            console.print(f"{down} of {len(samples)} devices down / thiết bị không phản hồi")
            raise typer.Exit(1)
        return
    registry = CollectorRegistry(auto_describe=False)  # nothing else yet: SnmpMetrics writes
    host, port = _hostport(listen, 9716)  # its own text once per cycle
    server = MetricsServer(registry, host, port, texts=[metrics.text])
    console.print(f"polling {len(devices)} devices every {interval:g}s; "
                  f"metrics at http://{host}:{server.port}/metrics")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(interval, stop)

    try:
        asyncio.run(main())
    finally:
        poller.close()
        server.close()
        if sink is not None:
            sink.close("snmp")


def traps(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    vault_password_file: VaultOpt = None,
    listen: Annotated[str, typer.Option(help="Receive traps on HOST:PORT.")] = "0.0.0.0:162",
    metrics_listen: Annotated[str | None, typer.Option(
        "--metrics-listen", help="Serve receiver metrics on HOST:PORT.")] = None,
    community: Annotated[list[str] | None, typer.Option(
        help="Accepted v1/v2c communities (default: those of the inventory's devices; with "
        "none, v1/v2c traps are refused unless the inventory allows v2c).")] = None,
    oid_map: Annotated[Path | None, typer.Option(
        "--oid-map", help="Trap OID map (default: monitoring/snmp/traps.yml).")] = None,
    flap_window: Annotated[float, typer.Option(
        help="Seconds in which repeated link traps count as flapping.")] = 60.0,
    max_message_bytes: Annotated[int, typer.Option(
        "--max-message-bytes", min=484,
        help="Larger datagrams are dropped unread (counted as too_large).")] = 65536,
    recv_buffer: Annotated[int, typer.Option(
        "--recv-buffer", min=65536, help="Trap socket receive buffer in bytes (SO_RCVBUFFORCE; "
        "without CAP_NET_ADMIN capped at net.core.rmem_max).")] = 16 * 1024 * 1024,
    events_out: EventsOpt = None,
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    no_spool: NoSpoolOpt = False,
) -> None:
    """Receive SNMP v1/v2c/v3 traps and informs and turn them into events."""
    from dcops.collectors.health import IntakeMetrics
    from dcops.collectors.snmp.trapmap import load_trap_map
    from dcops.collectors.snmp.traps import TrapReceiver, users_from_devices
    from dcops.collectors.snmp.trapwire import Limits
    from dcops.inventory import load_inventory

    model = load_inventory(inventory, vault_password_file)
    tmap = load_trap_map(oid_map or _monitoring_dir(inventory) / "snmp" / "traps.yml")
    devices = list(model.devices.values())
    comms = list(community or {d.snmp.community.reveal() for d in devices
                               if d.snmp and d.snmp.community})
    sink = _sink(spool, no_spool, events_out, bus, "traps")
    host, port = _hostport(listen, 162)
    intake = IntakeMetrics()
    receiver = TrapReceiver(host, port, communities=comms, users=users_from_devices(devices),
                            devices=devices, trap_map=tmap, sink=sink, flap_window=flap_window,
                            allow_any_community=model.settings.allow_snmp_v2c,
                            limits=Limits(max_message_bytes=max_message_bytes), intake=intake,
                            rcvbuf=recv_buffer)
    server = None
    if metrics_listen:
        from prometheus_client import CollectorRegistry

        from dcops.collectors.snmp.service import MetricsServer
        from dcops.pipeline.forward import StoreAndForward
        from dcops.pipeline.spool import SpoolMetrics, SqliteSpool

        registry = CollectorRegistry(auto_describe=False)
        registry.register(receiver.stats)
        registry.register(intake)
        for s in sink.sinks if sink is not None else []:
            if isinstance(s, SqliteSpool | StoreAndForward):  # the spool or a NATS bus's outbox
                # own connection: a wedged write must not hang /metrics
                registry.register(SpoolMetrics(SqliteSpool(s.path)))
            if isinstance(s, StoreAndForward):
                from dcops.pipeline.forward import ForwardMetrics

                registry.register(ForwardMetrics(s, SqliteSpool(s.path)))
        mh, mp = _hostport(metrics_listen, 9717)
        server = MetricsServer(registry, mh, mp)
    console = Console(stderr=True)
    console.print(f"receiving traps on udp {host}:{receiver.port}")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            if not receiver.run_forever():  # the sink is wedged: a thread may still wait on it
                console.print(f"{receiver.queue.depth()} traps not stored at shutdown / số trap "
                              "chưa được lưu khi dừng (sink unavailable; see the log)")
                sys.stderr.flush()
                os._exit(1)  # within the 5 s shutdown budget, without waiting for that thread
    finally:
        receiver.close()
        if server:
            server.close()
        if sink is not None:
            sink.close("traps")


def node_targets(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    vault_password_file: VaultOpt = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write here (default: stdout), e.g. "
        "monitoring/prometheus/targets/node.yml.")] = None,
    port: Annotated[int, typer.Option(help="node_exporter port.", min=1, max=65535)] = 9100,
) -> None:
    """Prometheus file_sd targets for node_exporter on every server of the inventory."""
    import yaml

    from dcops.inventory import load_inventory
    from dcops.inventory.derived import node_targets as derive_node_targets

    groups = derive_node_targets(load_inventory(inventory, vault_password_file), port)
    text = (f"# generated by: dcops collect node-targets -i {inventory}\n"
            + yaml.safe_dump(groups, sort_keys=False, allow_unicode=True))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"{len(groups)} node_exporter targets -> {output}")


def register(collect: typer.Typer) -> None:
    """Add `snmp`, `traps` and `node-targets` to the `collect` group."""
    collect.command("snmp")(snmp)
    collect.command("traps")(traps)
    collect.command("node-targets")(node_targets)
