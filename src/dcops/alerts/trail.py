"""Where the trail's secrets and anchors live, and when the store anchors its chain head.

The CLI builds a `TrailConfig` (from options and the environment) and hands it to the store;
`attach` ties it to the store's engine so every writer (`audit.append`) and the verifier find it.
A store opened without one gets the embedded default: a SQLite file's key file is ``trail.key``
beside the database (``<state>/trail.key`` for the default ``<state>/alerts.db``), an in-memory
database gets a key that lives as long as the process, and any other store has no key (reading
works, writing and verifying say which key is missing).

Anchoring is bounded: after a commit the head is anchored when `anchor_every` records were written
since the last anchor, when a rotation or the sealing of legacy records asks for it, or when
`anchor_interval` seconds passed (one timer at most per store); `close` anchors what is left.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from dcops.alerts import schema
from dcops.alerts.anchor import Anchor, AnchorSigner
from dcops.alerts.db import reading
from dcops.alerts.trailkey import Keyring
from dcops.errors import AlertStoreError, DcopsError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrailConfig:
    """Key file or key text, anchor signing key and certificate, anchor file, syslog, cadence."""

    key_file: Path | None = None
    key_text: str = ""  # ID:HEX[,ID:HEX] from the environment (wins over key_file)
    anchor_key: Path | None = None
    anchor_cert: Path | None = None
    anchor_file: Path | None = None
    syslog: str = ""  # "", /dev/log, udp://HOST:PORT, tcp://HOST:PORT
    anchor_every: int = 100
    anchor_interval: float = 300.0
    # For verification: more anchor copies (e.g. from the syslog server), older certificates, CA.
    anchor_sources: tuple[Path, ...] = ()
    anchor_certs: tuple[Path, ...] = ()
    anchor_ca: Path | None = None

    @property
    def anchoring(self) -> bool:
        """Whether this store signs and writes anchors."""
        return bool(self.anchor_key and self.anchor_cert and self.anchor_file)


class Trail:
    """The trail runtime of one store: its keys (loaded lazily), signer and anchoring cadence."""

    def __init__(self, config: TrailConfig, store: str = "",
                 keyring: Keyring | None = None) -> None:
        self.config = config
        self.store = store
        self._keyring = keyring
        self._signer: AnchorSigner | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._forced = False
        self._last = time.monotonic()
        self._timer: threading.Timer | None = None

    def keyring(self, create: bool = True) -> Keyring:
        """The HMAC keys; the key file is created on first use.

        With ``create=False`` (verification) the key file is read afresh and never created.
        """
        c = self.config
        if not create and c.key_file is not None and not c.key_text:
            if not c.key_file.exists():
                raise AlertStoreError(f"trail key file {c.key_file} does not exist: HMACs "
                                      "cannot be checked")
            return Keyring.load(c.key_file)
        if self._keyring is None:
            if c.key_text:
                self._keyring = Keyring.from_text(c.key_text)
            elif c.key_file is not None:
                self._keyring = Keyring.load_or_create(c.key_file)
            else:
                raise AlertStoreError(
                    f"no audit trail key for store {self.store}: give a key file "
                    "(--trail-key / DCOPS_TRAIL_KEY_FILE) or DCOPS_TRAIL_KEY")
        return self._keyring

    def signer(self) -> AnchorSigner | None:
        """The anchor signer, or None when anchoring is not configured."""
        c = self.config
        if self._signer is None and c.anchor_key and c.anchor_cert and c.anchor_file:
            self._signer = AnchorSigner(c.anchor_key, c.anchor_cert, c.anchor_file, c.syslog,
                                        self.store)
        return self._signer

    def appended(self, force_anchor: bool = False) -> None:
        """A record was appended inside a transaction (counted; anchored after commit)."""
        with self._lock:
            self._pending += 1
            self._forced |= force_anchor

    def committed(self, engine: Engine) -> None:
        """After a write transaction: anchor now if due, else make sure a timer will."""
        if not self.config.anchoring:
            return
        with self._lock:
            if self._pending == 0:
                return
            elapsed = time.monotonic() - self._last
            due = (self._forced or self._pending >= self.config.anchor_every
                   or elapsed >= self.config.anchor_interval)
            if not due:
                if self._timer is None:
                    self._timer = threading.Timer(self.config.anchor_interval - elapsed,
                                                  self._quietly, (engine,))
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._quietly(engine)

    def _quietly(self, engine: Engine) -> None:
        try:
            self.anchor_now(engine)
        except (DcopsError, OSError, SQLAlchemyError) as exc:  # the records are committed
            log.warning("audit trail anchor not written: %s", exc)

    def anchor_now(self, engine: Engine) -> Anchor | None:
        """Sign the committed head and publish it; None when the trail is empty."""
        signer = self.signer()
        if signer is None:
            raise AlertStoreError("anchoring is not configured: give the anchor key and "
                                  "certificate (DCOPS_TRAIL_ANCHOR_KEY, DCOPS_TRAIL_ANCHOR_CERT)")
        with self._lock:
            written = self._pending
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        a = schema.audit.c
        with reading(engine) as conn:
            row = conn.execute(select(a.seq, a.hash, a.key_id).order_by(a.seq.desc())
                               .limit(1)).first()
        anchor = None
        if row is not None:
            anchor = signer.sign(int(row.seq), row.hash, row.key_id)
            signer.publish(anchor)
        with self._lock:
            self._pending = max(0, self._pending - written)
            self._forced = False
            self._last = time.monotonic()
        return anchor

    def close(self, engine: Engine) -> None:
        """Anchor what this process wrote since the last anchor; stop the timer."""
        with self._lock:
            pending = self._pending
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if pending and self.config.anchoring:
            self._quietly(engine)
        if self._signer is not None:
            self._signer.close()
            self._signer = None


_TRAILS: weakref.WeakKeyDictionary[Engine, Trail] = weakref.WeakKeyDictionary()


def store_label(engine: Engine) -> str:
    """The store's URL without its password (named in anchors and messages)."""
    return engine.url.render_as_string(hide_password=True)


def attach(engine: Engine, config: TrailConfig) -> Trail:
    """Use this trail configuration for every write and verification on `engine`."""
    t = Trail(config, store_label(engine))
    _TRAILS[engine] = t
    return t


def trail_of(engine: Engine) -> Trail:
    """The attached trail, or the embedded default (see the module docstring)."""
    t = _TRAILS.get(engine)
    if t is None:
        db = engine.url.database
        if engine.dialect.name == "sqlite" and db and db != ":memory:":
            t = Trail(TrailConfig(key_file=Path(db).parent / "trail.key"), store_label(engine))
        elif engine.dialect.name == "sqlite":
            t = Trail(TrailConfig(), store_label(engine), Keyring.ephemeral())
        else:
            t = Trail(TrailConfig(), store_label(engine))
        _TRAILS[engine] = t
    return t
