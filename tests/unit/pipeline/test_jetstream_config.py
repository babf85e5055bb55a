"""JetStream bus configuration from one URL, subject tokens and KV keys (no server needed)."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcops.errors import ConfigError
from dcops.model.event import Event, LogSource
from dcops.pipeline import open_bus
from dcops.pipeline.jetstream import BusUnavailableError, JetStreamConfig
from dcops.pipeline.jetstream.subjects import event_subject, kv_key, kv_name, token

NATS_KV_KEY = re.compile(r"^[-/_=\.a-zA-Z0-9]+$")  # nats-py's own key check


def test_url_carries_servers_and_options(tmp_path: Path) -> None:
    pw = tmp_path / "collector.pw"
    pw.write_text("s3cret\nignored\n")
    cfg = JetStreamConfig.from_url(
        f"nats://n1:4222,n2:4222, n3:4222?replicas=3&prefix=dongnai&max_age=14d"
        f"&duplicate_window=10m&max_backlog=none&user=collector&password_file={pw}"
        "&create=false&replay_slack=all")
    assert cfg.servers == ("nats://n1:4222", "nats://n2:4222", "nats://n3:4222")
    assert (cfg.replicas, cfg.prefix, cfg.max_age, cfg.duplicate_window) == \
        (3, "dongnai", 14 * 86400, 600)
    assert cfg.max_backlog is None and cfg.replay_slack is None and cfg.create is False
    assert cfg.events_stream == "DONGNAI_EVENTS" and cfg.cursor_bucket == "DONGNAI_CURSORS"
    opts = cfg.connect_options()
    assert opts["user"] == "collector" and opts["password"] == "s3cret"
    assert "tls" not in opts
    assert JetStreamConfig.from_url("nats://h:1", replicas=3).replicas == 3  # override


@pytest.mark.parametrize(("url", "what"), [
    ("http://h:4222", "nats:// or tls://"),
    ("nats://user:pw@h:4222", "credentials in the URL"),
    ("nats://h:4222?replicas=2", "expected 1, 3 or 5"),
    ("nats://h:4222?max_age=forever", "duration"),
    ("nats://h:4222?bogus=1", "unknown option"),
    ("nats://h:4222?cert=/a.crt", "cert and key go together"),
    ("nats://h:4222?password_file=/x", "without user"),
    ("nats://h:4222?prefix=Bad.Prefix", "prefix"),
    ("nats://", "no NATS server"),
])
def test_bad_urls_say_what_was_expected(url: str, what: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(what)):
        JetStreamConfig.from_url(url)


def test_password_file_errors_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pw"
    empty.write_text("")
    cfg = JetStreamConfig.from_url(f"nats://h:1?user=u&password_file={empty}")
    with pytest.raises(ConfigError, match=str(empty)):
        cfg.connect_options()


def test_tls_context_from_pki_files(tmp_path: Path) -> None:
    """A real CA, client cert and key made with openssl load into a verifying context."""
    ca_key, ca, key, csr, crt = (tmp_path / n for n in
                                 ("ca.key", "ca.crt", "c.key", "c.csr", "c.crt"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-subj", "/CN=test-ca", "-days", "2")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=collector")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2")
    cfg = JetStreamConfig.from_url(f"tls://h:4222?ca={ca}&cert={crt}&key={key}")
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert cfg.servers == ("tls://h:4222",)
    missing = JetStreamConfig.from_url(f"nats://h:4222?ca={tmp_path / 'nope.pem'}")
    with pytest.raises(ConfigError, match=re.escape("nope.pem")):
        missing.ssl_context()


def test_subjects_by_site_and_source() -> None:
    e = Event("x", datetime.now(UTC), "syslog_tcp", LogSource(), {"site.name": "Đồng Nai"})
    assert event_subject("dcops", e) == "dcops.events.dong_nai.syslog_tcp"
    e.fields = {}
    assert event_subject("dcops", e) == "dcops.events.default.syslog_tcp"
    assert token("a.b*>c d") == "a_b_c_d" and token("") == "default" and len(token("x" * 99)) == 64


@given(st.text(max_size=40))
def test_kv_keys_are_valid_and_reversible(name: str) -> None:
    key = kv_key(name)
    assert NATS_KV_KEY.match(key) and not key.startswith(".") and not key.endswith(".")
    assert kv_name(key) == name


def test_unreachable_bus_raises_a_retryable_error() -> None:
    """Nothing listens: BusUnavailableError (an OSError, so collectors keep and retry)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(BusUnavailableError) as info:
        open_bus(f"nats://127.0.0.1:{port}", publish_timeout=1.0)
    assert isinstance(info.value, OSError)
    assert f"127.0.0.1:{port}" in str(info.value)


def test_a_reset_during_login_says_what_it_usually_means() -> None:
    # nats-server writes -ERR 'Authorization Violation' and closes; a TCP reset can lose it.
    from types import SimpleNamespace

    from dcops.pipeline.jetstream import JetStreamBus

    bus = JetStreamBus.__new__(JetStreamBus)
    for transport in ("ConnectionResetError: [Errno 104] Connection reset by peer",
                      "BrokenPipeError: [Errno 32] Broken pipe"):
        bus._session = SimpleNamespace(last_error=transport)  # type: ignore[assignment]
        assert "during login: usually a refused user" in bus._login_hint()
    for said in ("Error: nats: 'Authorization Violation'", ""):
        bus._session = SimpleNamespace(last_error=said)  # type: ignore[assignment]
        assert bus._login_hint() == ""
