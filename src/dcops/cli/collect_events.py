"""CLI: `dcops collect syslog`, `dcops collect logs` and `dcops collect wazuh` (security events).

Every source writes to the durable spool (`<state>/spool.db`) or, with `--bus nats://...`, to a
local outbox forwarded to NATS JetStream (dcops.cli.bus); with `--detect` a runner feeds the
spool to the Sigma engine and the alert store in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dcops.cli import collect_tail as tail
from dcops.cli.bus import BusOpt, close_sink, collector_sink
from dcops.cli.common import state_dir, vault_password_file
from dcops.errors import ConfigError

if TYPE_CHECKING:
    from dcops.collectors.wazuh import WazuhClient
    from dcops.model.event import Detection
    from dcops.pipeline import SqliteSpool
    from dcops.pipeline.forward import StoreAndForward

SpoolOpt = Annotated[
    Path | None,
    typer.Option("--spool", envvar="DCOPS_SPOOL", help="Spool file (default <state>/spool.db); "
                 "with a nats:// --bus, the local outbox (default <state>/outbox.db)."),
]
DetectOpt = Annotated[
    bool, typer.Option("--detect/--no-detect", help="Run detection on the spool in this process.")
]
RulesOpt = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="Sigma rule directory (repeatable; default soc_rules/)."),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="DCOPS_DB_URL", help="Alert store URL (default <state>/alerts.db)."
    ),
]
SiteModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory", "-i", envvar="DCOPS_INVENTORY",
        help="Site model: alerts get the site and information system of their host.",
    ),
]
MaxBacklogOpt = Annotated[
    int,
    typer.Option(help="Events the detector may lag behind before sources block (backpressure)."),
]


# Seconds a stopping collector keeps detecting what it stored last (within the 5 s SIGTERM bound).
DETECT_DRAIN = 1.0


def detector(
    rules: list[Path] | None, db: str | None, inventory: Path | None
) -> tuple[Any, Any, Any, float]:
    """The Sigma engine (snapshotting when it can), the alert sink, the store, the longest
    correlation timespan in seconds: what a detection runner is built from."""
    from dcops.alerts import AlertStore, default_url
    from dcops.cli.alerts_trail import trail_config
    from dcops.detect.engine import Engine
    from dcops.pipeline.engine_state import SnapshottingEngine, supports_snapshot

    dirs = rules or [Path("soc_rules")]
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"--rules {d}: not a directory of Sigma rules")
    engine = Engine.from_dirs(dirs)
    window = max((float(s.corr.timespan) for s in engine.correlations), default=0.0)
    store = AlertStore(db or default_url(state_dir()), trail=trail_config())
    sink: Any = store
    if inventory is not None:
        from dcops.alerts.enrich import SiteEnricher
        from dcops.inventory import load_inventory

        sink = _EnrichingSink(store, SiteEnricher(load_inventory(inventory, vault_password_file())))
    # Exact restarts: correlation windows are saved beside the cursor when the engine allows it.
    runnable: Any = SnapshottingEngine(engine) if supports_snapshot(engine) else engine
    return runnable, sink, store, window


@contextlib.contextmanager
def detection(
    spool: SqliteSpool | StoreAndForward, enabled: bool, rules: list[Path] | None, db: str | None,
    inventory: Path | None = None, drain: float | None = None,
) -> Iterator[None]:
    """Run spool -> engine -> alert store in a thread while the body runs.

    When the body ends, what the sources stored last is detected for at most `drain` seconds
    (None: all of it, for --once). A bounded drain keeps SIGTERM bounded; what is left is not
    lost: the detector's cursor is in the spool, so the next start detects it.
    """
    if not enabled:
        yield
        return
    from dcops.pipeline import SqliteSpool

    if not isinstance(spool, SqliteSpool):  # collector_sink refused this combination already
        raise ConfigError("--detect needs the SQLite spool as the bus")
    from dcops.pipeline import Runner

    runnable, sink, store, window = detector(rules, db, inventory)
    spool.register("detect")
    runner = Runner(spool, runnable, sink, replay_window=timedelta(seconds=window))
    stop = threading.Event()
    failure: list[BaseException] = []

    def loop() -> None:
        try:
            runner.run(stop)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    t = threading.Thread(target=loop, name="detect", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        until = None if drain is None else time.monotonic() + drain
        t.join(30 if until is None else drain)
        if not t.is_alive():  # else it is inside a batch: the exit ends it, the cursor resumes
            while (until is None or time.monotonic() < until) and runner.step():
                pass  # whatever the sources accepted last
            store.close()
        if failure:
            raise failure[0]


class _EnrichingSink:
    """The alert store, with each detection's site and system filled from the site model."""

    def __init__(self, store: Any, enrich: Callable[[Detection], Detection]) -> None:
        self.store, self.enrich = store, enrich

    def accept(self, detections: list[Detection]) -> None:
        self.store.accept([self.enrich(d) for d in detections])


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _unix_spec(spec: str) -> tuple[str, str]:
    """`PATH=HOST` (or just PATH: the host is this machine) for --unix-socket."""
    path, _, host = spec.partition("=")
    return path, host or socket.gethostname()


def syslog(
    listen: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    udp_port: Annotated[int, typer.Option(
        help="UDP port (-1 disables, 0 any free port).", min=-1, max=65535)] = 514,
    tcp_port: Annotated[int, typer.Option(
        help="TCP port (-1 disables, 0 any free port).", min=-1, max=65535)] = 514,
    tls_port: Annotated[int, typer.Option(
        help="TLS port (-1 disables, 0 any free port).", min=-1, max=65535)] = -1,
    relp_port: Annotated[int, typer.Option(
        help="RELP port (rsyslog omrelp; answered once stored; -1 disables, 0 any free port).",
        min=-1, max=65535)] = -1,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="CA for client certificates.")] = None,
    require_client_cert: Annotated[bool, typer.Option(help="Mutual TLS.")] = False,
    unix_socket: Annotated[
        list[str] | None,
        typer.Option(
            help="Also listen on a datagram socket PATH[=HOST] (e.g. a lab host's /dev/log)."
        ),
    ] = None,
    queue_size: Annotated[
        int, typer.Option(help="Messages read and not yet stored, per transport, at most.")
    ] = 10_000,
    max_message_bytes: Annotated[
        int, typer.Option(help="Longer messages are cut here and stored marked log.truncated.")
    ] = 65_536,
    max_frame_bytes: Annotated[
        int, typer.Option(help="Largest RFC 6587 octet count believed; a larger one is a framing "
                          "error and that message is read up to its newline (rsyslog's "
                          "MaxFrameSize).")
    ] = 200_000,
    listen_backlog: Annotated[
        int, typer.Option(help="TCP/TLS connections queued by the kernel before accept.")
    ] = 4096,
    max_connections: Annotated[
        int, typer.Option(help="Open connections per listener (TCP, TLS with handshakes in "
                          "progress, RELP); more are accepted and closed.")
    ] = 2048,
    idle_timeout: Annotated[
        float, typer.Option(help="Seconds a silent TCP/TLS peer stays connected.")
    ] = 300.0,
    stop_timeout: Annotated[
        float, typer.Option(help="Seconds SIGTERM may take (a second SIGTERM: at once).")
    ] = 3.0,
    metrics_listen: Annotated[
        str | None, typer.Option("--metrics-listen", help="Serve intake metrics on HOST:PORT.")
    ] = None,
    read_bytes: Annotated[
        int, typer.Option(help="Bytes read at once from a TCP/TLS/RELP connection; the next read "
                          "waits until these are stored. Larger reads make larger spool "
                          "transactions (faster) and cost memory: up to max-connections x "
                          "(read-bytes + max-message-bytes).", min=1024, max=16 << 20)
    ] = 16_384,
    workers: Annotated[
        int, typer.Option(help="Processes receiving TCP on the one port (SO_REUSEPORT), each "
                          "parsing on its own core; the main process keeps UDP, TLS, RELP and "
                          "writes the spool for all. 1: one process does everything.",
                          min=1, max=64)
    ] = 1,
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    detect: DetectOpt = False,
    rules: RulesOpt = None,
    db: DbOpt = None,
    inventory: SiteModelOpt = None,
    max_backlog: MaxBacklogOpt = 1_000_000,
) -> None:
    """Receive syslog (RFC 3164/5424 over UDP, TCP, TLS, RELP) into the spool until SIGTERM."""
    from dcops.cli.collect_syslog_workers import WorkerPool
    from dcops.collectors.health import IntakeMetrics
    from dcops.collectors.heap import batch_gc, keep_heap
    from dcops.collectors.syslog import SyslogConfig, SyslogServer, server_tls_context
    from dcops.pipeline import SqliteSpool

    if workers > 1 and tcp_port < 0:
        raise ConfigError(f"--workers {workers}: the workers receive TCP; --tcp-port is -1 "
                          "(disabled); give a TCP port or --workers 1")
    tls = None
    if tls_port >= 0:
        if not (tls_cert and tls_key):
            raise ConfigError("--tls-port needs --tls-cert and --tls-key")
        tls = server_tls_context(tls_cert, tls_key, tls_ca, require_client_cert=require_client_cert)
    cfg = SyslogConfig(
        host=listen,
        udp_port=udp_port if udp_port >= 0 else None,
        tcp_port=tcp_port if tcp_port >= 0 else None,
        tls_port=tls_port if tls_port >= 0 else None,
        relp_port=relp_port if relp_port >= 0 else None,
        tls=tls,
        queue_size=queue_size,
        unix_sockets=dict(_unix_spec(u) for u in unix_socket or []),
        max_message_bytes=max_message_bytes,
        max_frame_bytes=max_frame_bytes,
        read_bytes=read_bytes,
        listen_backlog=listen_backlog,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        stop_timeout=stop_timeout,
    )
    _raise_nofile(max_connections + 256)
    keep_heap()  # (before the fork: the workers inherit it) each batch reuses the last's memory
    batch_gc()  # and is not walked by the cycle collector every 700 allocations
    pool: WorkerPool | None = None
    if workers > 1:  # forked before this process opens the spool or starts any thread
        pool = WorkerPool(workers, cfg, listen, tcp_port)
        pool.fork()
        cfg.tcp_port = None
    try:
        sp = collector_sink(bus, spool, max_backlog, source="syslog", detect=detect)
    except BaseException:
        if pool is not None:
            pool.kill()
        raise
    console = Console(stderr=True)
    server = SyslogServer(sp, cfg, IntakeMetrics())
    if pool is not None:  # the workers' rows go to the spool, or to the NATS bus's outbox
        pool.start_feed(sp if isinstance(sp, SqliteSpool) else sp.outbox)
    metrics_http = (_syslog_metrics(server, sp, metrics_listen, pool) if metrics_listen
                    else None)

    with detection(sp, detect, rules, db, inventory, drain=DETECT_DRAIN):
        stats = asyncio.run(_serve_syslog(server, pool, console, listen, sp, stop_timeout))
    if metrics_http is not None and server.clean:
        metrics_http.close()  # (else no wait for it: its thread ends with the process)
    console.print(f"syslog: stopped; {stats}", highlight=False)
    if server.clean:  # else the writer may still be inside the spool: the exit closes it
        close_sink(sp, "syslog")
    else:
        console.print(f"syslog: {server.unstored} messages read were not stored: the spool did "
                      f"not take them within --stop-timeout {stop_timeout} s", highlight=False)


async def _serve_syslog(server: Any, pool: Any, console: Console, listen: str,
                        sp: SqliteSpool | StoreAndForward, stop_timeout: float) -> dict[str, Any]:
    """Run the server (and its TCP workers) until SIGTERM; the stop line's counters."""
    from dcops.cli.collect_syslog_workers import merged_stats
    from dcops.errors import CollectorError

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal() -> None:  # the first stops cleanly, a second one hurries
        if stopping.is_set():
            server.hurry()
            if pool is not None:
                pool.hurry()
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await server.start()
    except BaseException:
        if pool is not None:
            pool.kill()
        raise
    ports = [f"{k} {v}" for k, v in server.ports.items()]
    if pool is not None:
        ports.insert(0, f"tcp {pool.port} ({pool.count} worker processes)")
    console.print(f"syslog: listening on {listen} ({', '.join(ports)}); spool {sp.path}",
                  highlight=False)
    failed: list[str] = []
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 0.5)
        if pool is not None and (failed := pool.failed()):
            break  # a worker crashed: stop the whole collector, loudly
    if pool is not None:
        pool.terminate()
    await server.stop()
    if pool is not None:
        ok = await loop.run_in_executor(None, pool.join, stop_timeout + 1.0)
        server.clean = server.clean and ok
        if failed:  # what that worker had read and not stored is lost with it (like a SIGKILL)
            raise CollectorError(f"syslog: TCP {', '.join(failed)} ended unexpectedly; the "
                                 "collector stopped (what the others read is stored)")
    return merged_stats(dict(server.stats), pool)


def _raise_nofile(want: int) -> None:
    """Let the process hold `want` descriptors (the soft limit is often 1024), up to the hard."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def _syslog_metrics(server: Any, sp: SqliteSpool | StoreAndForward, listen: str,
                    pool: Any = None) -> Any:
    """/metrics on HOST:PORT: intake per transport, connections, spool dead letters (with
    `pool`, its TCP workers' counters added; with a NATS bus, its outbox and forwarding)."""
    from prometheus_client import CollectorRegistry

    from dcops.collectors.snmp.service import MetricsServer
    from dcops.collectors.syslog import SyslogMetrics
    from dcops.collectors.syslog_workers import MergedIntake
    from dcops.pipeline.spool import SpoolMetrics, SqliteSpool

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--metrics-listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9719")
    registry = CollectorRegistry(auto_describe=False)
    intake = server.metrics if pool is None else MergedIntake(server.metrics, pool.counters)
    syslog_metrics = SyslogMetrics(server, None if pool is None else pool.counters)
    spool = sp if isinstance(sp, SqliteSpool) else sp.outbox  # a NATS bus's: its outbox
    for c in (intake, syslog_metrics, SpoolMetrics(spool)):
        registry.register(c)
    if not isinstance(sp, SqliteSpool):
        from dcops.pipeline.forward import ForwardMetrics

        registry.register(ForwardMetrics(sp, SqliteSpool(sp.path)))
    return MetricsServer(registry, host.strip("[]"), int(port))


def logs(
    paths: Annotated[
        list[Path], typer.Argument(help="Log files to tail (auth.log, audit.log...).")
    ],
    host: Annotated[str, typer.Option(help="Host name for lines without one.")] = "",
    program: Annotated[
        str,
        typer.Option(
            help="Program for lines without a syslog header (e.g. sshd for `sshd -e` output)."
        ),
    ] = "",
    once: Annotated[bool, typer.Option(help="Read what is there and exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.5,
    from_end: Annotated[bool, typer.Option(help="Start new files at their end.")] = False,
    max_message_bytes: tail.MaxMessageOpt = 65_536,
    metrics_listen: tail.MetricsListenOpt = None,
    rotate_wait: tail.RotateWaitOpt = 1.0,
    shutdown_timeout: tail.ShutdownOpt = 4.0,
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    detect: DetectOpt = False,
    rules: RulesOpt = None,
    db: DbOpt = None,
    inventory: SiteModelOpt = None,
    max_backlog: MaxBacklogOpt = 1_000_000,
) -> None:
    """Tail log files into the spool, following rotation and resuming at inode and offset."""
    from dcops.collectors.logfile import FileTailer

    tail.paths_exist(paths)
    cap = tail.check_max_message_bytes(max_message_bytes)
    sp = collector_sink(bus, spool, max_backlog, source="logs", detect=detect)
    run = tail.Tail("logfile", sp, metrics_listen)
    name = host or socket.gethostname()
    tailers = [FileTailer(p, sp, sp, host=name, from_end=from_end, program=program,
                          max_message_bytes=cap, rotate_wait=rotate_wait, stats=run.stats)
               for p in paths]
    with detection(sp, detect, rules, db, inventory, drain=None if once else DETECT_DRAIN):
        stored = run.run(tailers, once=once, interval=interval, shutdown_timeout=shutdown_timeout)
    raw = sum(t.normaliser.stats["raw"] for t in tailers)
    total = sum(t.published for t in tailers)
    more = run.summary(tailers)
    Console(stderr=True).print(
        f"logs: {total} events spooled ({raw} unparsed kept raw)" + (f"; {more}" if more else ""),
        highlight=False,
    )
    close_sink(sp, "logs")
    if not stored:
        raise typer.Exit(1)  # the spool refused events: they are read again at the next start


wazuh_app = typer.Typer(
    help="Wazuh manager: agents, SCA results, alerts.json.", no_args_is_help=True
)
UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="DCOPS_WAZUH_URL", help="Manager API, e.g. https://wazuh:55000."),
]
UserOpt = Annotated[str, typer.Option("--user", envvar="DCOPS_WAZUH_USER", help="API user.")]
PwFileOpt = Annotated[
    Path,
    typer.Option(
        "--password-file", envvar="DCOPS_WAZUH_PASSWORD_FILE", help="File holding the password."
    ),
]
CaOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-file", help="CA that signed the manager's certificate (verification stays on)."
    ),
]


def _client(url: str, user: str, password_file: Path, ca_file: Path | None) -> WazuhClient:
    from dcops.collectors.wazuh import WazuhClient

    try:
        password = password_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"--password-file {password_file}: {exc.strerror}") from exc
    return WazuhClient(url, user, password, verify=str(ca_file) if ca_file else True)


@wazuh_app.command("agents")
def wazuh_agents(
    url: UrlOpt,
    password_file: PwFileOpt,
    user: UserOpt = "wazuh",
    ca_file: CaOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List Wazuh agents (Tác tử / Agents)."""
    from rich.table import Table

    with _client(url, user, password_file, ca_file) as c:
        agents = c.agents(status)
    t = Table("ID", "Tên / Name", "IP", "Trạng thái / Status", "OS", "Phiên bản / Version")
    for a in agents:
        t.add_row(
            a.get("id", ""),
            a.get("name", ""),
            a.get("ip", ""),
            a.get("status", ""),
            (a.get("os") or {}).get("name", ""),
            a.get("version", ""),
        )
    Console().print(t)


@wazuh_app.command("sca")
def wazuh_sca(
    agent_id: Annotated[str, typer.Argument(help="Agent id, e.g. 001.")],
    url: UrlOpt,
    password_file: PwFileOpt,
    user: UserOpt = "wazuh",
    ca_file: CaOpt = None,
) -> None:
    """SCA policy scores and failed checks of one agent (Đánh giá cấu hình / SCA)."""
    from rich.table import Table

    console = Console()
    with _client(url, user, password_file, ca_file) as c:
        for p in c.sca_policies(agent_id):
            console.print(
                f"[bold]{p.get('name')}[/] ({p.get('policy_id')}): "
                f"điểm / score {p.get('score')}%, đạt / pass {p.get('pass')}, "
                f"không đạt / fail {p.get('fail')}",
                highlight=False,
            )
            t = Table("ID", "Kiểm tra / Check", "Kết quả / Result")
            for ch in c.sca_checks(agent_id, str(p.get("policy_id")), result="failed"):
                t.add_row(str(ch.get("id")), str(ch.get("title")), str(ch.get("result")))
            console.print(t)


@wazuh_app.command("alerts")
def wazuh_alerts(
    path: Annotated[Path, typer.Argument(help="alerts.json of the manager.")] = Path(
        "/var/ossec/logs/alerts/alerts.json"
    ),
    once: Annotated[bool, typer.Option(help="Read what is there and exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.5,
    max_message_bytes: tail.MaxMessageOpt = 65_536,
    metrics_listen: tail.MetricsListenOpt = None,
    rotate_wait: tail.RotateWaitOpt = 1.0,
    shutdown_timeout: tail.ShutdownOpt = 4.0,
    bus: BusOpt = None,
    spool: SpoolOpt = None,
    detect: DetectOpt = False,
    rules: RulesOpt = None,
    db: DbOpt = None,
    inventory: SiteModelOpt = None,
    max_backlog: MaxBacklogOpt = 1_000_000,
) -> None:
    """Tail Wazuh alerts.json into the spool (logsource wazuh/alerts)."""
    from dcops.collectors.logfile import FileTailer
    from dcops.collectors.wazuh import WazuhAlertNormaliser

    tail.paths_exist([path])
    cap = tail.check_max_message_bytes(max_message_bytes)
    sp = collector_sink(bus, spool, max_backlog, source="wazuh", detect=detect)
    run = tail.Tail("wazuh", sp, metrics_listen)
    t = FileTailer(path, sp, sp, source="wazuh",
                   normaliser=WazuhAlertNormaliser(max_message_chars=cap), max_message_bytes=cap,
                   rotate_wait=rotate_wait, stats=run.stats)
    with detection(sp, detect, rules, db, inventory, drain=None if once else DETECT_DRAIN):
        stored = run.run([t], once=once, interval=interval, shutdown_timeout=shutdown_timeout)
    more = run.summary([t])
    Console(stderr=True).print(
        f"wazuh: {t.published} alerts spooled" + (f"; {more}" if more else ""), highlight=False
    )
    close_sink(sp, "wazuh")
    if not stored:
        raise typer.Exit(1)  # the spool refused events: they are read again at the next start


def register(collect: typer.Typer) -> None:
    """Add this area's commands to the `collect` group."""
    collect.command("syslog")(syslog)
    collect.command("logs")(logs)
    collect.add_typer(wazuh_app, name="wazuh")
