"""CLI: `dcops serve`: the web console and the Alertmanager webhook (uvicorn, TLS if set)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dcops.cli.alerts import ConfigOpt, DbOpt, open_store
from dcops.cli.common import state_dir
from dcops.errors import ConfigError
from dcops.pipeline.reader import SpoolEvents

if TYPE_CHECKING:
    from dcops.triage.noc import NocSource


def session_secret(configured: str) -> str:
    """The configured secret, else one kept in <state>/console-secret (0600, made once)."""
    if configured:
        return configured
    path = state_dir() / "console-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _loopback(host: str) -> bool:
    """Whether a listen address is loopback only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _webhook_token(path: Path | None, configured: str, *, required: bool) -> str:
    """The bearer token from the secrets file (else the config); required beyond loopback."""
    from dcops.cli.authn import read_secret

    token = read_secret(path, "webhook token file", private=False) if path else configured
    if token and len(token) < 16:
        raise ConfigError("the webhook token is shorter than 16 characters (make one: openssl "
                          "rand -base64 32)", file=str(path) if path else None,
                          key=None if path else "alertmanager.webhook_token")
    if required and not token:
        raise ConfigError("the Alertmanager webhook needs a bearer token when dcops serve "
                          "listens beyond loopback or behind a proxy: --webhook-token-file "
                          "FILE (the file Alertmanager's credentials_file names)",
                          key="--webhook-token-file")
    return token


def noc_source(option: str | None, configured: str, config_file: str,
               inventory: Path | None) -> NocSource | None:
    """The NOC view's Prometheus (the option, else noc.prometheus_url) and site model."""
    from dcops.triage.noc import NocSource
    from dcops.triage.prometheus import PrometheusClient

    url = option or configured
    if not url:
        return None
    try:
        client = PrometheusClient(url)
    except ValueError as exc:
        raise ConfigError(str(exc), file=None if option else config_file or None,
                          key="--prometheus-url" if option else "noc.prometheus_url") from None
    model = None
    if inventory is not None:
        from dcops.inventory import load_inventory

        model = load_inventory(inventory)
    return NocSource(client, model)


def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate (PKI)")
                        ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key")] = None,
    webhook_token_file: Annotated[Path | None, typer.Option(
        "--webhook-token-file", envvar="DCOPS_WEBHOOK_TOKEN_FILE",
        help="Bearer token Alertmanager must send (required unless bound to loopback)")
    ] = None,
    behind_proxy: Annotated[bool, typer.Option(
        "--behind-proxy", help="A TLS-terminating reverse proxy forwards to this server: "
                               "cookies always Secure, X-Forwarded-* trusted from it only")
    ] = False,
    proxy_address: Annotated[list[str] | None, typer.Option(
        "--proxy-address", help="Address of that proxy (repeatable; default 127.0.0.1)")
    ] = None,
    alertmanager_url: Annotated[str | None, typer.Option(
        "--alertmanager-url", help="Where silences go (else alertmanager.url in the config)")
    ] = None,
    inventory: Annotated[Path | None, typer.Option(
        "-i", "--inventory", envvar="DCOPS_INVENTORY",
        help="Site model: security level of each system shown on its alerts")] = None,
    spool: Annotated[Path | None, typer.Option(
        "--spool", envvar="DCOPS_SPOOL",
        help="Event spool whose events alert pages show (default <state>/spool.db)")] = None,
    timezone: Annotated[str, typer.Option(
        "--timezone", envvar="DCOPS_TIMEZONE",
        help="IANA time zone the pages show times in (labelled on every page)")
    ] = "Asia/Ho_Chi_Minh",
    prometheus_url: Annotated[str | None, typer.Option(
        "--prometheus-url", envvar="DCOPS_PROMETHEUS_URL",
        help="Prometheus the NOC view (/noc) reads device and WAN state from, e.g. "
             "http://127.0.0.1:9090 (else noc.prometheus_url in the config)")] = None,
    db: DbOpt = None, config: ConfigOpt = None,
) -> None:
    """Serve the triage console and POST /api/v1/alertmanager/webhook / Bảng điều khiển.

    Beyond loopback it needs TLS (--tls-cert/--tls-key) or --behind-proxy, and a webhook token.
    """
    import uvicorn

    from dcops.alerts.backend import StoreBackend
    from dcops.triage import create_app
    from dcops.triage.render import zone

    if proxy_address and not behind_proxy:
        raise ConfigError("--proxy-address only means something with --behind-proxy",
                          key="--proxy-address")
    try:
        zone(timezone)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--timezone") from None
    store = open_store(db, config, alertmanager_url, inventory)
    try:
        cfg = store.config
        cert = tls_cert or (Path(cfg.tls_cert) if cfg.tls_cert else None)
        key = tls_key or (Path(cfg.tls_key) if cfg.tls_key else None)
        if bool(cert) != bool(key):
            raise ConfigError("TLS needs both a certificate and a key (--tls-cert and --tls-key)",
                              file=cfg.source or None, key="console.tls_cert/tls_key")
        for p in (cert, key):
            if p is not None and not p.is_file():
                raise ConfigError("TLS file not found", file=str(p))
        loopback = _loopback(host)
        if not loopback and cert is None and not behind_proxy:
            raise ConfigError(f"refusing to serve on {host} without TLS: give --tls-cert and "
                              "--tls-key (the project's PKI), or --behind-proxy when a "
                              "TLS-terminating proxy (--proxy-address) forwards to it",
                              key="--host")
        token = _webhook_token(webhook_token_file, cfg.webhook_token,
                               required=not loopback or behind_proxy)
        proxies = (proxy_address or ["127.0.0.1"]) if behind_proxy else []
        noc = noc_source(prometheus_url, cfg.prometheus_url, cfg.source, inventory)
        backend = StoreBackend(store)
        backend.verifier.warm()  # the first full trail walk, before anyone opens /audit
        app = create_app(backend, session_secret(cfg.session_secret),
                         secure_cookies=cert is not None or behind_proxy, webhook_token=token,
                         events=SpoolEvents(spool or state_dir() / "spool.db"),
                         trusted_proxies=proxies, timezone=timezone, noc_source=noc)
        scheme = "https" if cert else "http"
        typer.echo(f"dcops console on {scheme}://{host}:{port}/ (webhook: "
                   f"{scheme}://{host}:{port}/api/v1/alertmanager/webhook, "
                   f"{'bearer token required' if token else 'loopback clients only'}"
                   f"{'; behind the proxy at ' + ', '.join(proxies) if proxies else ''})")
        typer.echo(f"NOC view: {scheme}://{host}:{port}/noc (Prometheus: "
                   f"{noc.prometheus.url if noc else 'none, give --prometheus-url'})")
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False,
                    ssl_certfile=str(cert) if cert else None,
                    ssl_keyfile=str(key) if key else None)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add `dcops serve` to the root application."""
    app.command("serve")(serve)
