"""CLI: the audit trail's keys and anchors (`dcops alerts anchor`, `dcops alerts trail ...`).

The environment is read here only and handed to the store as a `TrailConfig`:
DCOPS_TRAIL_KEY_FILE (default <state>/trail.key) or DCOPS_TRAIL_KEY (ID:HEX[,ID:HEX], last
current); DCOPS_TRAIL_ANCHOR_KEY / DCOPS_TRAIL_ANCHOR_CERT (default <state>/trail-anchor.key/.crt;
anchoring is on when both exist), DCOPS_TRAIL_ANCHOR_CA, DCOPS_TRAIL_ANCHOR_FILE (default
<state>/trail-anchors.jsonl), DCOPS_TRAIL_SYSLOG (/dev/log when it exists; udp://H:P, tcp://H:P,
or "off"), DCOPS_TRAIL_ANCHOR_EVERY (records, 100) and DCOPS_TRAIL_ANCHOR_MINUTES (5).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dcops.cli.common import state_dir
from dcops.errors import ConfigError, DcopsError

if TYPE_CHECKING:
    from dcops.alerts.chain import VerifyResult
    from dcops.alerts.trail import TrailConfig

trail_app = typer.Typer(help="Audit trail keys and anchors / Khóa và mốc neo của nhật ký.",
                        no_args_is_help=True)


def _env_path(name: str, default: Path) -> tuple[Path, bool]:
    value = os.environ.get(name, "")
    return (Path(value), True) if value else (default, False)


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        number = float(value) if value else default
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ConfigError(f"expected a positive number, got {value!r}", key=name)
    return number


def trail_config() -> TrailConfig:
    """The trail configuration from the environment, with defaults under the state directory."""
    from dcops.alerts.trail import TrailConfig

    st = state_dir()
    key_file, _ = _env_path("DCOPS_TRAIL_KEY_FILE", st / "trail.key")
    akey, akey_set = _env_path("DCOPS_TRAIL_ANCHOR_KEY", st / "trail-anchor.key")
    acert, acert_set = _env_path("DCOPS_TRAIL_ANCHOR_CERT", st / "trail-anchor.crt")
    for path, explicit, name in ((akey, akey_set, "DCOPS_TRAIL_ANCHOR_KEY"),
                                 (acert, acert_set, "DCOPS_TRAIL_ANCHOR_CERT")):
        if explicit and not path.is_file():
            raise ConfigError("file not found", file=str(path), key=name)
    ca = os.environ.get("DCOPS_TRAIL_ANCHOR_CA", "")
    anchor_file, _ = _env_path("DCOPS_TRAIL_ANCHOR_FILE", st / "trail-anchors.jsonl")
    syslog = os.environ.get("DCOPS_TRAIL_SYSLOG", "/dev/log" if Path("/dev/log").exists() else "")
    return TrailConfig(
        key_file=key_file, key_text=os.environ.get("DCOPS_TRAIL_KEY", ""),
        anchor_key=akey if akey.is_file() else None,
        anchor_cert=acert if acert.is_file() else None,
        anchor_file=anchor_file, syslog="" if syslog == "off" else syslog,
        anchor_every=int(_env_number("DCOPS_TRAIL_ANCHOR_EVERY", 100)),
        anchor_interval=_env_number("DCOPS_TRAIL_ANCHOR_MINUTES", 5) * 60,
        anchor_ca=Path(ca) if ca else None)


def verify_trail_config(anchors: list[Path] | None, certs: list[Path] | None,
                        ca: Path | None) -> TrailConfig:
    """The environment's configuration plus verify-audit's extra anchor copies and certificates."""
    base = trail_config()
    for p in [*(anchors or []), *(certs or []), *([ca] if ca else [])]:
        if not p.is_file():
            raise ConfigError("file not found", file=str(p))
    return replace(base, anchor_sources=tuple(anchors or ()), anchor_certs=tuple(certs or ()),
                   anchor_ca=ca or base.anchor_ca)


def print_verify(r: VerifyResult) -> None:
    """verify-audit's human output: the verdict, every problem, every warning."""
    if r.ok:
        anchored = (f", {r.anchors_checked} anchor(s) up to #{r.last_anchor_seq}"
                    if r.anchors_checked else "")
        typer.echo(f"audit trail OK / nhật ký toàn vẹn: {r.checked} records verified "
                   f"(HMAC keys / khóa: {', '.join(r.key_ids) or '-'}{anchored})")
    else:
        where = f"first bad record #{r.first_bad}: " if r.first_bad is not None else ""
        typer.echo(f"audit trail ALTERED / nhật ký bị sửa đổi: {where}{r.reason} "
                   f"({r.checked} records before it verify)", err=True)
        for p in r.problems[1:]:
            typer.echo(f"  also / ngoài ra: {p}", err=True)
    for w in r.warnings:
        typer.echo(f"warning / cảnh báo: {w}", err=True)


def anchor(db: Annotated[str | None, typer.Option(
               "--db", envvar="DCOPS_DB_URL", help="Store URL (default <state>/alerts.db).")
           ] = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Anchor the trail's head now: signed, appended to the anchor file and sent to syslog.

    No console role is needed: the anchor signing key is the gate, and nothing enters the store.
    """
    from dcops.cli.alerts import open_store

    with open_store(db, None) as store:
        a = store.trail.anchor_now(store.engine)
    if as_json:
        typer.echo(json.dumps(asdict(a) if a else None, indent=2))
    elif a is None:
        typer.echo("the trail is empty: nothing to anchor / nhật ký trống")
    else:
        cfg = store.trail.config
        typer.echo(f"anchored record #{a.seq} {a.hash[:16]}… / đã neo → {cfg.anchor_file}"
                   + (f" and syslog {cfg.syslog}" if cfg.syslog else ""))


@trail_app.command("init")
def init(self_signed: Annotated[bool, typer.Option(
             "--self-signed", help="Lab/test only: make an Ed25519 anchor key and a self-signed "
                                   "certificate (production: the pki_cert role's)")] = False,
         common_name: Annotated[str, typer.Option("--common-name")] = "dcops-trail-anchor-lab",
         db: Annotated[str | None, typer.Option("--db", envvar="DCOPS_DB_URL")] = None) -> None:
    """Create the HMAC key file (0600), seal legacy records and anchor the head."""
    from dcops.alerts.anchor import make_lab_signer
    from dcops.alerts.chain import seal
    from dcops.alerts.trailkey import Keyring

    cfg = trail_config()
    if cfg.key_text:
        typer.echo("keys come from DCOPS_TRAIL_KEY: no key file is made")
    elif cfg.key_file is not None:
        ring = Keyring.load_or_create(cfg.key_file)
        typer.echo(f"trail key file {cfg.key_file} (mode 0600), current key {ring.current_id}")
    if self_signed:
        st = state_dir()
        key, cert = cfg.anchor_key or st / "trail-anchor.key", cfg.anchor_cert or st / (
            "trail-anchor.crt")
        make_lab_signer(key, cert, common_name)
        typer.echo(f"lab anchor key {key} and self-signed certificate {cert}")
        cfg = trail_config()
    from dcops.cli.alerts import open_store

    with open_store(db, None, trail=cfg) as store:
        marker = seal(store.engine)
        if marker is not None:
            typer.echo(f"legacy records 1..{marker.seq - 1} sealed by record #{marker.seq}")
        a = store.trail.anchor_now(store.engine) if cfg.anchoring else None
    typer.echo(f"anchored record #{a.seq}" if a else
               "anchoring off: no anchor key and certificate" if not cfg.anchoring else
               "trail empty: nothing to anchor yet")


@trail_app.command("seal")
def seal_cmd(db: Annotated[str | None, typer.Option("--db", envvar="DCOPS_DB_URL")] = None
             ) -> None:
    """Start keyed chaining on an upgraded store: its legacy records get a keyed seal record."""
    from dcops.alerts.chain import seal
    from dcops.cli.alerts import actor, open_store

    with open_store(db, None) as store:
        actor(None, store, "users", "trail seal")
        marker = seal(store.engine)
    typer.echo(f"legacy records 1..{marker.seq - 1} sealed by record #{marker.seq}" if marker
               else "nothing to seal: the trail is empty or already keyed")


@trail_app.command("rotate-key")
def rotate_key_cmd(reason: Annotated[str, typer.Option("--reason")] = "",
                   db: Annotated[str | None, typer.Option("--db", envvar="DCOPS_DB_URL")] = None
                   ) -> None:
    """Rotate the HMAC key: a rotation record signed by the old key names the new one."""
    from dcops.alerts.chain import rotate_key
    from dcops.cli.alerts import actor, open_store

    with open_store(db, None) as store:
        rec = rotate_key(store.engine, actor(None, store, "users", "trail rotate-key"), reason)
    typer.echo(f"record #{rec.seq} (signed by {rec.key_id}): new key "
               f"{rec.detail['new_key_id']} / khóa mới")


@trail_app.command("grant-app")
def grant_app(role: Annotated[str, typer.Argument(help="The application's PostgreSQL role")],
              db: Annotated[str | None, typer.Option(
                  "--db", envvar="DCOPS_DB_URL", help="The store as its OWNER")] = None,
              print_only: Annotated[bool, typer.Option("--print", help="Only print the SQL")
                                    ] = False) -> None:
    """PostgreSQL: give ROLE what the store needs; the trail stays SELECT/INSERT only."""
    from dcops.alerts.db import normalise_url
    from dcops.alerts.trailguard import app_grants, grant_app_role

    if not db:
        raise DcopsError("--db (or DCOPS_DB_URL): the PostgreSQL store, connected as its owner")
    from dcops.cli.alerts import open_store

    with open_store(normalise_url(db), None) as store:
        statements = (app_grants(store.engine, role) if print_only
                      else grant_app_role(store.engine, role))
    typer.echo(";\n".join(statements) + ";")


def register_trail(alerts_app: typer.Typer) -> None:
    """Add `alerts anchor` and `alerts trail ...`."""
    alerts_app.command("anchor")(anchor)
    alerts_app.add_typer(trail_app, name="trail")
