"""connect(): explicit addresses for every flavour, discovery order, and the failure message."""

import time

import pytest

from envd_jupyter.buildkit import ConnectError, connect
from envd_jupyter.buildkit._address import Address, AddressError, candidates, parse
from envd_jupyter.buildkit._tls import TLSConfig
from envd_jupyter.buildkit._transport import DirectTransport


def test_parse_address_forms():
    assert parse("unix:///run/buildkit/buildkitd.sock") == Address("buildkitd", "unix", "/run/buildkit/buildkitd.sock", "explicit")
    assert parse("tcp://10.0.0.1:1234").target == "10.0.0.1:1234"
    assert parse("docker://").target == "/var/run/docker.sock"
    assert parse("docker+unix:///tmp/d.sock") == Address("docker", "unix", "/tmp/d.sock", "explicit")
    assert parse("unix:///var/run/docker.sock", docker_default=True).kind == "docker"
    assert str(parse("docker+tcp://h:2375")) == "docker+tcp://h:2375"
    for bad in ("http://x", "tcp://nohost", "unix://", "relative/path"):
        with pytest.raises(AddressError):
            parse(bad)


def test_discovery_order():
    found = candidates({"BUILDKIT_HOST": "tcp://b:1", "DOCKER_HOST": "unix:///d.sock"})
    assert [(a.source, a.kind) for a in found] == [
        ("BUILDKIT_HOST", "buildkitd"), ("DOCKER_HOST", "docker"),
        ("default buildkitd socket", "buildkitd"), ("default docker socket", "docker")]
    assert [a.source for a in candidates({})] == ["default buildkitd socket", "default docker socket"]


def test_connect_each_flavour(any_daemon):
    with connect(f"docker+unix://{any_daemon}") as client:
        assert client.address.kind == "docker"
        assert client.workers(), "a dockerd always has one BuildKit worker"


def test_discovery_uses_docker_host(monkeypatch, docker_current):
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{docker_current}")
    with connect() as client:
        assert client.address.source == "DOCKER_HOST"
        assert client.address.target == docker_current


def test_buildkit_host_wins_over_docker_host(monkeypatch, docker_current, docker_old):
    monkeypatch.setenv("BUILDKIT_HOST", f"docker+unix://{docker_old}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{docker_current}")
    with connect() as client:
        assert client.address.target == docker_old


def test_failed_discovery_lists_every_address_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("BUILDKIT_HOST", f"unix://{tmp_path}/missing.sock")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(ConnectError) as info:
        connect(timeout=2)
    message = str(info.value)
    assert f"unix://{tmp_path}/missing.sock (BUILDKIT_HOST)" in message
    assert "docker+tcp://127.0.0.1:1 (DOCKER_HOST)" in message
    assert "/run/buildkit/buildkitd.sock" in message and "/var/run/docker.sock" in message
    assert "scripts/buildkit-up" in message
    assert len(message.splitlines()) == 1


def test_non_docker_socket_is_reported(tmp_path):
    import socket

    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    try:
        with pytest.raises(ConnectError, match="silent.sock"):
            connect(f"docker+unix://{path}", timeout=1)
    finally:
        listener.close()


def test_direct_grpc_transport_reaches_control_api(docker_current, client_for):
    """unix:// speaks gRPC straight to the socket; the dockerd proxy's socket is such an endpoint."""
    proxied = client_for(docker_current)
    proxy_socket = proxied.transport.channel_target
    with connect(f"unix://{proxy_socket}") as direct:
        assert isinstance(direct.transport, DirectTransport)
        assert [w.id for w in direct.workers()] == [w.id for w in proxied.workers()]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from tlsrelay import make_certs

    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def h2c_endpoint(docker_current, client_for):
    """The plain gRPC endpoint of the current daemon (its proxy socket), for a TLS relay to front."""
    return client_for(docker_current).transport.channel_target


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
def test_tcp_tls_and_mtls(h2c_endpoint, certs, mutual):
    from tlsrelay import SERVER_NAME, TLSRelay

    relay = TLSRelay(h2c_endpoint, certs, require_client_cert=mutual)
    tls = TLSConfig(ca=certs["ca.pem"], server_name=SERVER_NAME,
                    cert=certs["client.pem"] if mutual else None, key=certs["client.key"] if mutual else None)
    try:
        with connect(f"tcp://127.0.0.1:{relay.port}", tls=tls) as client:
            assert client.workers()
            assert "source.image" in client.caps().llb
    finally:
        relay.close()


def test_mtls_without_client_cert_is_refused(h2c_endpoint, certs):
    from tlsrelay import SERVER_NAME, TLSRelay

    relay = TLSRelay(h2c_endpoint, certs, require_client_cert=True)
    try:
        with pytest.raises(ConnectError, match=f"tcp://127.0.0.1:{relay.port}"):
            connect(f"tcp://127.0.0.1:{relay.port}", tls={"ca": certs["ca.pem"], "server_name": SERVER_NAME},
                    timeout=3)
        deadline = time.monotonic() + 10  # the relay logs the failed handshake from its own thread
        while not relay.handshake_errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.handshake_errors, "the server saw a handshake without a client certificate"
    finally:
        relay.close()


def test_tls_with_unknown_ca_is_refused(h2c_endpoint, certs, tmp_path):
    from tlsrelay import TLSRelay, make_certs

    other = make_certs(tmp_path)
    relay = TLSRelay(h2c_endpoint, certs, require_client_cert=False)
    try:
        with pytest.raises(ConnectError):
            connect(f"tcp://127.0.0.1:{relay.port}", tls={"ca": other["ca.pem"], "server_name": "buildkitd.test"},
                    timeout=3)
    finally:
        relay.close()


def test_tcp_without_tls(h2c_endpoint):
    from tlsrelay import TLSRelay

    relay = TLSRelay(h2c_endpoint, None)
    try:
        with connect(f"tcp://127.0.0.1:{relay.port}") as client:
            assert client.address.transport == "tcp" and client.workers()
    finally:
        relay.close()


def test_unclosed_client_leaves_no_socket_dir(docker_old, tmp_path):
    import subprocess
    import sys

    code = ("import sys; from envd_jupyter.buildkit import connect\n"
            "c = connect('docker+unix://' + sys.argv[1]); c.workers(); print(c.transport.channel_target)")
    done = subprocess.run([sys.executable, "-c", code, docker_old], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "TMPDIR": str(tmp_path)})
    socket_path = done.stdout.strip()
    assert socket_path.startswith(str(tmp_path)), done.stderr
    assert list(tmp_path.iterdir()) == []
