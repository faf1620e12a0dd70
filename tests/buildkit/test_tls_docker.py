"""TLS to dockerd over TCP as docker does it (issue 17 item 1), against a real ``dockerd --tlsverify``.

``scripts/tls-dockerd`` starts a throwaway dockerd on 127.0.0.1 that accepts only TLS with a client
certificate from its own fresh CA. Docker's environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or an
explicit TLSConfig carries every connection: the Control API, the session (context upload and
export both ways) and the HTTP API. Verification is on; plain text to a remote address is refused.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from envd_jupyter.buildkit import ConnectError, LocalDir, TLSConfig, connect
from envd_jupyter.buildkit._address import parse
from envd_jupyter.buildkit._connect import tls_for
from envd_jupyter.llb._source import local, scratch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tls-dockerd"


@pytest.fixture(scope="module")
def tls_dockerd(tmp_path_factory, daemon_env):
    """(address, client cert dir) of a dockerd that speaks only mutual TLS; stopped after the module."""
    directory = tmp_path_factory.mktemp("tls-dockerd")
    started = subprocess.run([str(SCRIPT), "start", str(directory)], capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield started.stdout.strip(), directory / "client"
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, timeout=120)


@pytest.fixture
def docker_env_tls(tls_dockerd, monkeypatch):
    address, certs = tls_dockerd
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    return address.replace("tcp://", "docker+tcp://")


def test_docker_tls_environment_carries_solve_session_and_http_api(docker_env_tls, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    out = tmp_path / "out"
    state = scratch().copy(local("ctx"), "/big.bin", "/big.bin").mkfile("/hello", b"over tls")
    with connect(docker_env_tls) as client:
        assert client.transport.tls is not None
        client.solve(state, local_dirs={"ctx": context}, exports=[LocalDir(out)])
        assert client.labelled_images("envd-jupyter.test-none") == []  # dockerd's HTTP API, over TLS too
    assert (out / "hello").read_bytes() == b"over tls"
    assert (out / "big.bin").read_bytes() == (context / "big.bin").read_bytes()


def test_docker_host_discovery_uses_the_tls_environment(docker_env_tls, monkeypatch):
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    monkeypatch.setenv("DOCKER_HOST", docker_env_tls.replace("docker+tcp://", "tcp://"))
    with connect() as client:
        assert client.address.source == "DOCKER_HOST" and client.workers()


def test_an_explicit_tls_config(tls_dockerd):
    address, certs = tls_dockerd
    tls = TLSConfig(ca=certs / "ca.pem", cert=certs / "cert.pem", key=certs / "key.pem")
    with connect(address.replace("tcp://", "docker+tcp://"), tls=tls) as client:
        assert client.workers()


@pytest.mark.parametrize("case", ["no tls", "unknown ca", "wrong name", "no client cert"])
def test_what_the_tls_daemon_refuses_or_we_refuse(tls_dockerd, tmp_path, case):
    """Verification is on: an unknown CA or a certificate for another name is refused by us; the daemon
    refuses a client without a certificate and, of course, plain text."""
    from tlsrelay import make_certs

    address, certs = tls_dockerd
    target = address.replace("tcp://", "docker+tcp://")
    tls = {"no tls": None,
           "unknown ca": TLSConfig(ca=make_certs(tmp_path)["ca.pem"], cert=certs / "cert.pem", key=certs / "key.pem"),
           "wrong name": TLSConfig(ca=certs / "ca.pem", cert=certs / "cert.pem", key=certs / "key.pem",
                                   server_name="other.example"),
           "no client cert": TLSConfig(ca=certs / "ca.pem")}[case]
    with pytest.raises(ConnectError) as refused:
        connect(target, tls=tls, timeout=5)
    assert target in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("address", ["tcp://192.0.2.10:1234", "docker+tcp://buildhost.example:2375"])
def test_plain_text_to_a_remote_daemon_is_refused_before_connecting(address, monkeypatch):
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    with pytest.raises(ConnectError) as refused:
        connect(address)
    message = str(refused.value)
    assert message.startswith(f"refusing plain text to {address} (explicit): a remote daemon needs TLS")
    assert "tls=False allows plain text" in message and "\n" not in message


def test_plain_text_when_asked_for_and_to_loopback(monkeypatch):
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    assert tls_for(parse("tcp://192.0.2.10:1234"), False) is None
    assert tls_for(parse("docker+tcp://127.0.0.1:2375"), None) is None
    assert tls_for(parse("tcp://[::1]:1234"), None) is None
    with pytest.raises(ConnectError, match="refusing plain text"):
        tls_for(parse("tcp://10.0.0.8:1234", source="BUILDKIT_HOST"), None)
    with pytest.raises(ConnectError) as unreachable:
        connect("tcp://192.0.2.10:1234", tls=False, timeout=1)  # allowed, so it is really tried
    assert "no BuildKit daemon answered" in str(unreachable.value)


def test_docker_tls_environment_applies_to_docker_addresses_only(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    assert tls_for(parse("docker+tcp://buildhost.example:2376"), None) == TLSConfig(
        ca=tmp_path / "ca.pem", cert=tmp_path / "cert.pem", key=tmp_path / "key.pem")
    with pytest.raises(ConnectError, match="refusing plain text"):
        tls_for(parse("tcp://buildhost.example:1234"), None)
