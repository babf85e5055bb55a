"""CLI: `dcops serve`: the web console and the Alertmanager webhook (uvicorn, TLS if set)."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from dcops.cli.alerts import ConfigOpt, DbOpt, open_store
from dcops.cli.common import state_dir
from dcops.errors import ConfigError


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


class SpoolEvents:
    """The console's EventLookup over the pipeline's SQLite spool, opened read-only per lookup.

    A spool that does not exist (yet) or cannot be read gives no events: the alert page then
    lists the event ids only.
    """

    MESSAGE_CHARS = 500

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, ids: Sequence[str]) -> list[dict[str, str]]:
        """Time, host, source, action and message of the events with these ids."""
        from dcops.pipeline.codec import decode

        wanted = list(dict.fromkeys(ids))[:1000]
        if not wanted or not self.path.is_file():
            return []
        out: list[dict[str, str]] = []
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return []
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT body FROM events WHERE id IN ({marks})",  # noqa: S608 - only placeholders are interpolated
                                  chunk).fetchall()
                for (body,) in rows:
                    e = decode(body)
                    f = e.fields
                    host = f.get("host.name") or f.get("observer.name") or f.get("host.ip") or ""
                    message = str(f.get("message") or e.raw or "")
                    out.append({"id": e.id, "time": e.timestamp.isoformat(), "host": str(host),
                                "source": e.source, "action": str(f.get("event.action") or ""),
                                "message": message[:self.MESSAGE_CHARS]})
        except sqlite3.Error:
            return []
        finally:
            db.close()
        return sorted(out, key=lambda x: x["time"])


def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate (PKI)")
                        ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key")] = None,
    alertmanager_url: Annotated[str | None, typer.Option(
        "--alertmanager-url", help="Where silences go (else alertmanager.url in the config)")
    ] = None,
    inventory: Annotated[Path | None, typer.Option(
        "-i", "--inventory", envvar="DCOPS_INVENTORY",
        help="Site model: security level of each system shown on its alerts")] = None,
    spool: Annotated[Path | None, typer.Option(
        "--spool", envvar="DCOPS_SPOOL",
        help="Event spool whose events alert pages show (default <state>/spool.db)")] = None,
    db: DbOpt = None, config: ConfigOpt = None,
) -> None:
    """Serve the triage console and POST /api/v1/alertmanager/webhook / Bảng điều khiển."""
    import uvicorn

    from dcops.alerts.backend import StoreBackend
    from dcops.triage import create_app

    store = open_store(db, config, alertmanager_url, inventory)
    cfg = store.config
    cert = tls_cert or (Path(cfg.tls_cert) if cfg.tls_cert else None)
    key = tls_key or (Path(cfg.tls_key) if cfg.tls_key else None)
    if bool(cert) != bool(key):
        raise ConfigError("TLS needs both a certificate and a key (--tls-cert and --tls-key)",
                          file=cfg.source or None, key="console.tls_cert/tls_key")
    for p in (cert, key):
        if p is not None and not p.is_file():
            raise ConfigError("TLS file not found", file=str(p))
    app = create_app(StoreBackend(store), session_secret(cfg.session_secret),
                     secure_cookies=cert is not None, webhook_token=cfg.webhook_token,
                     events=SpoolEvents(spool or state_dir() / "spool.db"))
    scheme = "https" if cert else "http"
    typer.echo(f"dcops console on {scheme}://{host}:{port}/ (webhook: "
               f"{scheme}://{host}:{port}/api/v1/alertmanager/webhook)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False,
                    ssl_certfile=str(cert) if cert else None,
                    ssl_keyfile=str(key) if key else None)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add `dcops serve` to the root application."""
    app.command("serve")(serve)
