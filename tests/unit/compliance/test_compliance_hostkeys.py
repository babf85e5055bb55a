"""SSH evidence only from hosts whose key is recorded; `dcops hosts trust` records one deliberately.

The server is a real SSH server (Paramiko's server side: key exchange, host key signature,
public-key authentication, exec channel) on 127.0.0.1, so the client's checks run exactly as
against sshd (the lab integration test does that with sshd itself).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.compliance.collect import hostkeys
from dcops.compliance.collect.ssh import SshCollector, Target
from dcops.compliance.evidence import Evidence
from dcops.errors import HostKeyError
from dcops.model import Host, Settings, SiteModel


class _Answer(paramiko.ServerInterface):
    def __init__(self, client_key: paramiko.PKey) -> None:
        self.client_key = client_key

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL if key == self.client_key else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        def answer() -> None:
            time.sleep(0.2)  # after paramiko has sent the exec request's success reply
            channel.sendall(b"probe ran\n")
            channel.send_exit_status(0)
            channel.close()
        threading.Thread(target=answer, daemon=True).start()
        return True


class SshServer:
    """An SSH server with host key `host_key` on 127.0.0.1:port, one thread per connection."""

    def __init__(self, host_key: paramiko.PKey, client_key: paramiko.PKey) -> None:
        self.host_key, self.client_key = host_key, client_key
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=_Answer(self.client_key))
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def close(self) -> None:
        self.sock.close()
        for transport in self.transports:
            transport.close()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    client = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "client")))
    return {"client_file": tmp_path / "client",
            "client": client,
            "host": paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "host"))),
            "other": paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "other")))}


def _keygen(path: Path) -> Path:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def server(keys: dict[str, Any]) -> Iterator[SshServer]:
    srv = SshServer(keys["host"], keys["client"])
    yield srv
    srv.close()


def _model() -> SiteModel:
    return SiteModel(Settings(), hosts={"web1": Host("web1", "127.0.0.1", "primary-dc")})


def _target(server: SshServer, keys: dict[str, Any], known: Path) -> Target:
    return Target("web1", "127.0.0.1", "root", server.port, str(keys["client_file"]),
                  known_hosts=str(known))


def test_fingerprint_is_openssh_sha256(keys: dict[str, Any], tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "host.pub")], capture_output=True,
                         text=True, check=True).stdout
    assert out.split()[1] == hostkeys.fingerprint(keys["host"])
    assert hostkeys.fingerprint(keys["host"]).startswith("SHA256:")


def test_unknown_host_key_is_refused_naming_host_and_presented_key(
        server: SshServer, keys: dict[str, Any], tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(HostKeyError) as caught:
        SshCollector([_target(server, keys, known)], timeout=10).collect(_model(), Evidence())
    text = str(caught.value)
    assert text.startswith(f"web1 (127.0.0.1:{server.port}): unknown SSH host key")
    assert f"expected: none recorded for [127.0.0.1]:{server.port} in {known}" in text
    assert f"presented: ssh-ed25519 {hostkeys.fingerprint(keys['host'])}" in text
    assert "dcops hosts trust web1" in text
    assert known.read_text() == ""  # never added on first sight


def test_changed_host_key_is_refused_with_both_fingerprints(
        server: SshServer, keys: dict[str, Any], tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    other = keys["other"]
    known.write_text(f"[127.0.0.1]:{server.port} {other.get_name()} {other.get_base64()}\n")
    evidence = Evidence()
    with pytest.raises(HostKeyError) as caught:
        SshCollector([_target(server, keys, known)], timeout=10).collect(_model(), evidence)
    text = str(caught.value)
    assert text.startswith(f"web1 (127.0.0.1:{server.port}): SSH host key CHANGED")
    assert f"expected ssh-ed25519 {hostkeys.fingerprint(other)} ({known})" in text
    assert f"presented ssh-ed25519 {hostkeys.fingerprint(keys['host'])}" in text
    assert [r.command for r in evidence.records.values()] == ["ssh session (probe script)"]


def test_missing_known_hosts_is_refused_before_connecting(
        server: SshServer, keys: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match=r"web1 \(127\.0\.0\.1:\d+\): known_hosts .*/nowhere: "
                                           "No such file"):
        SshCollector([_target(server, keys, tmp_path / "nowhere")]).collect(_model(), Evidence())
    assert server.transports == []


def test_no_known_hosts_at_all_is_refused(server: SshServer, keys: dict[str, Any],
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Without UserKnownHostsFile the OpenSSH defaults apply; none existing is a refusal."""
    monkeypatch.setattr(hostkeys, "DEFAULT_KNOWN_HOSTS", (str(tmp_path / "a"),
                                                          str(tmp_path / "b")))
    target = Target("web1", "127.0.0.1", "root", server.port, str(keys["client_file"]))
    with pytest.raises(HostKeyError, match="no known_hosts file"):
        SshCollector([target]).collect(_model(), Evidence())


def test_recorded_host_key_is_accepted(server: SshServer, keys: dict[str, Any],
                                       tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    host = keys["host"]
    assert hostkeys.record(known, "127.0.0.1", server.port, host, names=("web1",))
    assert not hostkeys.record(known, "127.0.0.1", server.port, host)  # already there
    client = hostkeys.verifying_client(hostkeys.HostId("web1", "127.0.0.1", server.port,
                                                       str(known)))
    client.connect("127.0.0.1", server.port, username="root", pkey=keys["client"],
                   look_for_keys=False, allow_agent=False, timeout=10)
    _, out, _ = client.exec_command("true")
    assert out.read() == b"probe ran\n"
    client.close()


def _inventory(tmp_path: Path, port: int, known: Path) -> Path:
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    servers:\n      hosts:\n        web1:\n"
        f"          ansible_host: 127.0.0.1\n          ansible_port: {port}\n"
        "          dcops_site: primary-dc\n")
    (inv / "group_vars" / "all" / "main.yml").write_text(
        "dcops_environment: test\n"
        "ansible_ssh_common_args: -o UserKnownHostsFile={{ inventory_dir }}/known_hosts.txt "
        "-o StrictHostKeyChecking=yes\n"
        "dcops_sites:\n  primary-dc: {kind: primary_dc, name: P, name_vi: P}\n")
    assert known == inv / "known_hosts.txt"
    return inv


def test_hosts_trust_records_after_confirmation_and_spots_a_change(
        server: SshServer, keys: dict[str, Any], tmp_path: Path) -> None:
    known = tmp_path / "inventory" / "known_hosts.txt"
    inv = _inventory(tmp_path, server.port, known)
    presented = hostkeys.fingerprint(keys["host"])
    runner = CliRunner()
    declined = runner.invoke(app, ["hosts", "trust", "web1", "-i", str(inv)], input="n\n")
    assert declined.exit_code == 1 and not known.exists()
    assert f"ssh-ed25519 {presented}" in declined.output
    accepted = runner.invoke(app, ["hosts", "trust", "web1", "-i", str(inv)], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    line = known.read_text().strip()
    assert line == (f"[127.0.0.1]:{server.port},web1 ssh-ed25519 {keys['host'].get_base64()}")
    again = runner.invoke(app, ["hosts", "trust", "127.0.0.1", "-i", str(inv)])
    assert again.exit_code == 0 and "already trusted" in again.output
    # the host is rebuilt (new key): shown as CHANGED, refused unless the console says so
    rebuilt = SshServer(keys["other"], keys["client"])
    try:
        line = known.read_text().replace(str(server.port), str(rebuilt.port))
        known.write_text(line)
        (inv / "hosts.yml").write_text((inv / "hosts.yml").read_text().replace(
            f"ansible_port: {server.port}", f"ansible_port: {rebuilt.port}"))
        wrong = runner.invoke(app, ["hosts", "trust", "web1", "-i", str(inv), "--yes",
                                    "--expect", presented])
        assert isinstance(wrong.exception, HostKeyError)
        assert "CHANGED" in wrong.output and presented in wrong.output
        assert f"presented {hostkeys.fingerprint(keys['other'])}, expected {presented}" \
            in str(wrong.exception)
        new = hostkeys.fingerprint(keys["other"])
        right = runner.invoke(app, ["hosts", "trust", "web1", "-i", str(inv), "--yes",
                                    "--expect", new])
        assert right.exit_code == 0, right.output
        assert known.read_text().count("ssh-ed25519") == 1  # replaced, not added
        assert keys["other"].get_base64() in known.read_text()
    finally:
        rebuilt.close()


def test_evidence_records_the_verified_host_key(server: SshServer, keys: dict[str, Any],
                                                tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    assert hostkeys.record(known, "127.0.0.1", server.port, keys["host"], names=("web1",))
    evidence = Evidence()
    SshCollector([_target(server, keys, known)], timeout=10).collect(_model(), evidence)
    session = evidence.records["ssh:web1:session"]
    assert session.host_key == f"{keys['host'].get_name()} {hostkeys.fingerprint(keys['host'])}"
