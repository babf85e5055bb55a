"""`--bus TARGET`: which bus a collector or `dcops detect run` uses, and the errors it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.cli.bus import collector_sink, nats_config, spool_path
from dcops.errors import ConfigError
from dcops.pipeline import SqliteSpool


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path / "state"))


def test_the_spool_stays_the_default(tmp_path: Path) -> None:
    assert spool_path(None, None) == tmp_path / "state" / "spool.db"
    assert spool_path(None, tmp_path / "x.db") == tmp_path / "x.db"
    assert spool_path("sqlite:///srv/spool.db", None) == Path("/srv/spool.db")
    assert spool_path("/srv/spool.db", None) == Path("/srv/spool.db")


@pytest.mark.parametrize(("bus", "spool", "fragment"), [
    ("ftp://h/x", None, "expected a spool path, sqlite:///path, nats://host:port"),
    ("sqlite://relative.db", None, "expected sqlite:///absolute/path.db"),
    ("  ", None, "--bus: empty"),
    ("/srv/a.db", Path("/srv/b.db"), "both name the spool: give one"),
])
def test_a_bad_spool_target_names_the_option(bus: str, spool: Path | None,
                                             fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        spool_path(bus, spool)


@pytest.mark.parametrize(("url", "fragment"), [
    ("nats://h1:4222?replicas=2", "replicas=2: expected 1, 3 or 5"),
    ("nats://h1:4222?bogus=1", "unknown option(s) bogus"),
    ("nats://u:p@h1:4222", "credentials in the URL"),
    ("tls://h1:4222?ca=/nonexistent/ca.pem", "ca file /nonexistent/ca.pem does not exist"),
    ("nats://h1:4222?user=c&password_file=/nonexistent/pw", "cannot read password file"),
])
def test_a_bad_nats_target_is_refused_before_anything_starts(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        nats_config(url)
    assert fragment in str(err.value)


def test_a_collector_on_nats_cannot_also_detect(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dcops detect run"):
        collector_sink("nats://127.0.0.1:1", None, detect=True)
    assert not (tmp_path / "state" / "outbox.db").exists()  # refused before opening anything


def test_a_collector_on_the_spool_gets_the_spool(tmp_path: Path) -> None:
    sink = collector_sink(f"sqlite://{tmp_path}/s.db", None)
    assert isinstance(sink, SqliteSpool) and sink.path == tmp_path / "s.db"
    sink.close()
