"""TLS to dockerd over TCP as docker does it (issue 17 item 1), against a real ``dockerd --tlsverify``.

``scripts/tls-dockerd`` starts a throwaway dockerd on 127.0.0.1 that accepts only TLS with a client
certificate from its own fresh CA. Docker's environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or an
explicit TLSConfig carries every connection: the Control API, the session (context upload and
export both ways) and the HTTP API. Verification is on; plain text to a remote address is refused,
and so is TLS that does not check a remote daemon (docker's DOCKER_CERT_PATH without
DOCKER_TLS_VERIFY) unless a TLSConfig asks for it with verify=False.
"""

from __future__ import annotations

import os
import shutil

import pytest

from envd_jupyter.buildkit import ConnectError, LocalDir, TLSConfig, connect
from envd_jupyter.buildkit._address import parse
from envd_jupyter.buildkit._connect import tls_for
from envd_jupyter.buildkit._tls import docker_env_tls as tls_from_environment
from envd_jupyter.llb._source import local, scratch

DOCKER_TLS_VARIABLES = ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS")


@pytest.fixture(autouse=True)
def no_docker_tls_environment(monkeypatch):
    for name in DOCKER_TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


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
def test_plain_text_to_a_remote_daemon_is_refused_before_connecting(address):
    with pytest.raises(ConnectError) as refused:
        connect(address)
    message = str(refused.value)
    assert message.startswith(f"refusing plain text to {address} (explicit): a remote daemon needs TLS")
    assert "tls=False allows plain text" in message and "\n" not in message


def test_plain_text_when_asked_for_and_to_loopback():
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


def test_dockers_environment_as_docker_reads_it(tmp_path):
    """DOCKER_TLS_VERIFY: verified; DOCKER_CERT_PATH (Go client) or DOCKER_TLS (CLI) alone: TLS without
    checking the daemon, with the client certificate when both files are there; nothing set: no TLS."""
    assert tls_from_environment({}) is None
    assert tls_from_environment({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}) == TLSConfig(
        ca=tmp_path / "ca.pem", cert=tmp_path / "cert.pem", key=tmp_path / "key.pem")
    assert tls_from_environment({"DOCKER_CERT_PATH": str(tmp_path)}) == TLSConfig(verify=False)
    (tmp_path / "cert.pem").write_text("c")
    (tmp_path / "key.pem").write_text("k")
    assert tls_from_environment({"DOCKER_CERT_PATH": str(tmp_path)}) == TLSConfig(
        cert=tmp_path / "cert.pem", key=tmp_path / "key.pem", verify=False)
    assert tls_from_environment({"DOCKER_TLS": "1", "DOCKER_CERT_PATH": str(tmp_path)}).verify is False
    assert tls_from_environment({"DOCKER_TLS": "1", "DOCKER_TLS_VERIFY": "1"}).verify is True


@pytest.mark.parametrize("variables", [{"DOCKER_CERT_PATH": "/certs"}, {"DOCKER_TLS": "1"}])
def test_unverified_tls_to_a_remote_daemon_needs_an_explicit_config(monkeypatch, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    address = "docker+tcp://buildhost.example:2376"
    with pytest.raises(ConnectError) as refused:
        connect(address)
    message = str(refused.value)
    assert message.startswith(f"refusing TLS that does not check {address} (explicit)")
    assert "DOCKER_TLS_VERIFY=1" in message and "verify=False" in message and "\n" not in message
    explicit = TLSConfig(verify=False)
    assert tls_for(parse(address), explicit) is explicit
    assert tls_for(parse("docker+tcp://127.0.0.1:2376"), None).verify is False  # loopback: as docker does


def test_grpc_to_buildkitd_cannot_skip_verification():
    with pytest.raises(ConnectError, match="always verifies"):
        tls_for(parse("tcp://buildhost.example:1234"), TLSConfig(verify=False))


def _certs_with_a_foreign_ca(certs, directory):
    """The daemon's client certificate and key beside a CA that did not sign the daemon's certificate."""
    from tlsrelay import make_certs

    directory.mkdir()
    make_certs(directory)  # its own ca.pem, among others
    for name in ("cert.pem", "key.pem"):
        shutil.copy(certs / name, directory / name)
    return directory


def test_cert_path_without_verify_is_tls_that_does_not_check_the_loopback_daemon(tls_dockerd, tmp_path,
                                                                                monkeypatch):
    """With a CA that cannot verify the daemon: DOCKER_TLS_VERIFY fails, DOCKER_CERT_PATH alone connects
    (TLS with the client certificate, no check), as docker does."""
    address, certs = tls_dockerd
    target = address.replace("tcp://", "docker+tcp://")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(_certs_with_a_foreign_ca(certs, tmp_path / "foreign")))
    with connect(target) as client:
        assert client.transport.tls.verify is False and client.workers()
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(target, timeout=5)


def test_an_explicit_unverified_config_solves_with_a_daemon_it_cannot_verify(tls_dockerd, tmp_path):
    address, certs = tls_dockerd
    foreign = _certs_with_a_foreign_ca(certs, tmp_path / "foreign")
    tls = TLSConfig(ca=foreign / "ca.pem", cert=foreign / "cert.pem", key=foreign / "key.pem",
                    server_name="other.example", verify=False)
    out = tmp_path / "out"
    with connect(address.replace("tcp://", "docker+tcp://"), tls=tls) as client:
        client.solve(scratch().mkfile("/hello", b"unverified"), exports=[LocalDir(out)])
    assert (out / "hello").read_bytes() == b"unverified"
