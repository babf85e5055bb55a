"""The JetStream bus over mutual TLS with per-role NATS users, against a real nats-server.

A CA, a server certificate (127.0.0.1) and a client certificate are made with openssl (the same
shape pki_cert issues: ECC P-256); the server requires TLS with a client certificate and knows
two users: `detect` (everything) and `collector` (publish events and dead letters, keep its
checkpoints, read cursor positions for backpressure; it cannot create or delete streams, ack for
detection or read events). Passwords come from files, as the CLI reads them.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from natscluster import HOST, free_ports

from dcops.model.event import Event, LogSource
from dcops.pipeline import open_bus
from dcops.pipeline.jetstream import BusUnavailableError, JetStreamBus

pytestmark = pytest.mark.integration
PREFIX = "rt"


@dataclass
class Server:
    url: str
    ca: Path
    cert: Path
    key: Path
    passwords: dict[str, Path]


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _issue(d: Path, name: str, ca: Path, ca_key: Path, ext: str) -> tuple[Path, Path]:
    key, csr, crt, extf = (d / f"{name}.{x}" for x in ("key", "csr", "crt", "ext"))
    extf.write_text(ext)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", extf)
    return crt, key


def _collector_permissions() -> str:
    up = PREFIX.upper()
    allow = [f"{PREFIX}.events.>", f"{PREFIX}.deadletters.>", "$JS.API.INFO",
             "$JS.API.STREAM.INFO.>",
             f"$JS.API.CONSUMER.CREATE.KV_{up}_CURSORS",
             f"$JS.API.CONSUMER.MSG.NEXT.KV_{up}_CURSORS.*",
             f"$JS.API.CONSUMER.DELETE.KV_{up}_CURSORS.*",
             f"$KV.{up}_CHECKPOINTS.>",
             f"$JS.API.DIRECT.GET.KV_{up}_CHECKPOINTS.>",
             f"$JS.API.STREAM.MSG.GET.KV_{up}_CHECKPOINTS"]
    quoted = ", ".join(f'"{a}"' for a in allow)
    return f'publish: {{ allow: [{quoted}] }}, subscribe: {{ allow: ["_INBOX.>"] }}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("nats-tls")
    ca_key, ca = d / "ca.key", d / "ca.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", ca, "-subj", "/CN=dcops test issuing CA", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    scrt, skey = _issue(d, "bus1", ca, ca_key,
                        f"subjectAltName=IP:{HOST},DNS:localhost\nextendedKeyUsage=serverAuth\n")
    ccrt, ckey = _issue(d, "collector", ca, ca_key, "extendedKeyUsage=clientAuth\n")
    passwords = {}
    for user in ("detect", "collector"):
        p = d / f"{user}.pw"
        p.write_text(f"{user}-pw-0123456789\n")
        p.chmod(0o600)
        passwords[user] = p
    port = free_ports(1)[0]
    conf = d / "nats.conf"
    conf.write_text(
        f'listen: "{HOST}:{port}"\njetstream {{ store_dir: "{d / "store"}" }}\n'
        f'tls {{ cert_file: "{scrt}", key_file: "{skey}", ca_file: "{ca}", verify: true,'
        " timeout: 5 }\n"
        "authorization { users = [\n"
        '  { user: "detect", password: "detect-pw-0123456789" }\n'
        '  { user: "collector", password: "collector-pw-0123456789", permissions: { '
        f"{_collector_permissions()} }} }}\n]}}\n")
    log = (d / "nats.log").open("wb")
    proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", "nats-server", "-c",
                             str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:  # listening (TLS and JetStream come up before the client port)
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nats-server did not start: {(d / 'nats.log').read_text()}")
                time.sleep(0.1)
        yield Server(f"tls://{HOST}:{port}", ca, ccrt, ckey, passwords)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def url(s: Server, user: str, **extra: str | None) -> str:
    """The bus URL for `user`; an extra key set to None leaves that option out."""
    q: dict[str, str | None] = {"ca": str(s.ca), "cert": str(s.cert), "key": str(s.key),
                                "user": user, "password_file": str(s.passwords[user]),
                                "prefix": PREFIX, **extra}
    return s.url + "?" + "&".join(f"{k}={v}" for k, v in q.items() if v is not None)


def ev(i: int) -> Event:
    return Event(f"tls{i}", datetime.now(UTC), "syslog_tls", LogSource("linux", "sshd"),
                 {"site.name": "DC1", "n": i}, raw=f"line {i}")


def test_roles_over_mutual_tls(server: Server) -> None:
    # detection (role detect) creates the streams and buckets and registers its cursor
    detect = open_bus(url(server, "detect"), publish_timeout=10)
    assert isinstance(detect, JetStreamBus)
    detect.register("detect")
    try:
        # a collector: no right to create anything, publishes and keeps checkpoints
        collector = JetStreamBus(url(server, "collector", create="false"), publish_timeout=3)
        try:
            collector.publish([ev(i) for i in range(50)])
            collector.publish([ev(0)])  # a retried event: stored once
            collector.dead_letter("syslog_tls", b"\xff", "bad frame")
            collector.save_checkpoint("logfile:/var/log/auth.log", "4096")
            assert collector.load_checkpoint("logfile:/var/log/auth.log") == "4096"
            assert collector.backlog() == 50
            with pytest.raises(BusUnavailableError, match=r"(?i)permissions violation"):
                collector.ack("detect", 50)  # may not move detection's cursor
            with pytest.raises(BusUnavailableError, match=r"(?i)permissions violation"):
                collector.fetch_after(0, 10)  # nor read events
        finally:
            collector.close()
        got = detect.fetch("detect", 100)
        assert [e.fields["n"] for _, e in got] == list(range(50))
        detect.ack("detect", got[-1][0])
        assert detect.dead_letter_count() == 1
    finally:
        detect.close()


def test_collector_cannot_delete_the_stream(server: Server) -> None:
    async def attempt() -> str:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        b = JetStreamBus(url(server, "detect"))  # make sure the stream exists
        b.close()
        ctx = JetStreamBus(url(server, "collector", create="false")).config
        opts = ctx.connect_options()
        nc = await nats.connect(error_cb=on_error, **opts)
        try:
            with pytest.raises(Exception):  # noqa: B017,PT011 - timeout or API error
                await nc.jetstream(timeout=2).delete_stream(f"{PREFIX.upper()}_EVENTS")
        finally:
            await nc.close()
        return " ".join(errors)

    assert "permissions violation" in asyncio.run(attempt()).lower()


@pytest.mark.parametrize(("change", "expected"), [
    # the server's "Authorization Violation", or, when a TCP reset lost it (under load), the
    # login hint that says what a reset during login means
    ({"password_file": "WRONG"}, r"(?i)(authorization|during login: usually a refused user)"),
    ({"cert": None, "key": None}, r"(?i)(certificate|tls|ssl|timed out|eof)"),
])
def test_refused_clients_say_why(server: Server, tmp_path: Path,
                                 change: dict[str, str | None], expected: str) -> None:
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    opts = {k: str(wrong) if v == "WRONG" else v for k, v in change.items()}
    with pytest.raises(BusUnavailableError, match=expected):
        JetStreamBus(url(server, "detect", **opts), publish_timeout=8)


def test_partitioned_subjects_need_no_other_permission(server: Server) -> None:
    """With partitions=2 the collector's `<prefix>.events.>` covers `.p<k>`, and detection reads
    each partition through its own filtered consumer and lists the stream's subjects."""
    detect = JetStreamBus(url(server, "detect", partitions="2"), publish_timeout=10)
    try:
        collector = JetStreamBus(url(server, "collector", create="false", partitions="2"),
                                 publish_timeout=3)
        try:
            collector.publish([ev(i) for i in range(1000, 1040)])
        finally:
            collector.close()
        ids: list[str] = []
        for p in (0, 1):
            view = detect.partition(p)
            view.register(f"g/p{p}")
            got = view.fetch(f"g/p{p}", 100)
            assert got, p
            ids += [e.id for _, e in got]
        assert sorted(ids) == sorted(f"tls{i}" for i in range(1000, 1040))
        assert not any(s.endswith((".p0", ".p1")) for s in detect.stray_subjects())
    finally:
        detect.close()
