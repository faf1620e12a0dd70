"""TLS per builder in a fleet file (issue 17): ``address`` + ``tls: {ca, cert, key, server_name, verify}``
or ``tls: false``; every mistake one FleetError naming the file and the key; builds over a real
``dockerd --tlsverify`` (scripts/tls-dockerd)."""

from __future__ import annotations

import uuid

import pytest

from envd_jupyter import buildkit, llb
from envd_jupyter.fleet import Fleet, FleetError

PEM = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"


def write(tmp_path, text):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_builder_entry_takes_tls_with_paths_relative_to_the_file(tls_dockerd, tmp_path):
    (tmp_path / "certs").symlink_to(tls_dockerd[1])
    path = write(tmp_path, "builders:\n"
                           "  remote:\n"
                           "    address: docker+tcp://buildhost.example:2376\n"
                           "    tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem,"
                           " server_name: buildkitd.test}\n"
                           "  plain: {address: tcp://buildhost.example:1234, tls: false}\n"
                           "  local: docker+unix:///run/docker.sock\n")
    fleet = Fleet.from_file(path)
    assert fleet.names == ["remote", "plain", "local"]
    assert fleet.address("remote") == "docker+tcp://buildhost.example:2376"
    assert fleet.tls("remote") == buildkit.TLSConfig(ca=tmp_path / "certs/ca.pem", cert=tmp_path / "certs/cert.pem",
                                                      key=tmp_path / "certs/key.pem", server_name="buildkitd.test")
    assert fleet.tls("plain") is False and fleet.tls("local") is None


@pytest.mark.parametrize("entry, expected", [
    ("{address: tcp://h:1, tls: {cafile: x}}", "builders.b.tls: unknown key 'cafile' (expected ca, cert, key"),
    ("{address: tcp://h:1, tls: {ca: absent.pem}}", "builders.b.tls.ca: {dir}/absent.pem: no such file"),
    ("{address: tcp://h:1, tls: {ca: bad.pem}}", "builders.b.tls: the certificates do not load"),
    ("{address: tcp://h:1, tls: {cert: bad.pem}}", "builders.b.tls: cert and key go together"),
    ("{address: tcp://h:1, tls: true}", "builders.b.tls: true says nothing about certificates"),
    ("{address: tcp://h:1, tls: yes please}", "builders.b.tls: expected a mapping of ca, cert, key"),
    ("{address: tcp://h:1, tls: {verify: 0}}", "builders.b.tls.verify: expected true or false"),
    ("{address: tcp://h:1, tls: {server_name: 3}}", "builders.b.tls.server_name: expected a host name"),
    ("{tls: false}", "builders.b.address: expected an address"),
    ("{address: tcp://h:1, tsl: false}", "builders.b: unknown key 'tsl' (expected address, tls)"),
])
def test_a_bad_tls_entry_is_one_line_naming_the_file_and_the_key(tmp_path, entry, expected):
    (tmp_path / "bad.pem").write_text(PEM)
    path = write(tmp_path, f"builders:\n  a: docker+unix:///a.sock\n  b: {entry}\n")
    with pytest.raises(FleetError) as caught:
        Fleet.from_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected.format(dir=tmp_path) in message and "\n" not in message


def test_builders_given_in_code_take_the_same_entries(tmp_path):
    tls = buildkit.TLSConfig(verify=False)
    fleet = Fleet({"a": {"address": "docker+tcp://h:2376", "tls": tls}, "b": "unix:///b.sock"})
    assert fleet.tls("a") is tls and fleet.tls("b") is None
    with pytest.raises(FleetError, match=r"^builders\.a\.tls\.ca: .*: no such file$"):
        Fleet({"a": {"address": "docker+tcp://h:2376", "tls": {"ca": str(tmp_path / "none.pem")}}})


@pytest.fixture
def tls_fleet_file(tls_dockerd, tmp_path):
    """A fleet file naming the TLS dockerd four ways: its certificates (relative paths), another name
    to check, the name its certificate carries, and no TLS at all."""
    address, certs = tls_dockerd
    target = address.replace("tcp://", "docker+tcp://")
    (tmp_path / "certs").symlink_to(certs)
    tls = "{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem"
    return write(tmp_path, "builders:\n"
                           f"  tlsd: {{address: {target}, tls: {tls}}}}}\n"
                           f"  named: {{address: {target}, tls: {tls}, server_name: localhost}}}}\n"
                           f"  wrong-name: {{address: {target}, tls: {tls}, server_name: other.example}}}}\n"
                           f"  no-tls: {target}\n")


def test_a_fleet_builds_over_tls_on_the_builders_that_verify(tls_fleet_file, monkeypatch):
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS"):
        monkeypatch.delenv(name, raising=False)
    with Fleet.from_file(tls_fleet_file, timeout=10) as fleet:
        infos = {info.name: info for info in fleet.builders()}
        assert infos["tlsd"].healthy and infos["named"].healthy
        assert not infos["wrong-name"].healthy and "other.example" in infos["wrong-name"].error
        assert not infos["no-tls"].healthy  # the daemon speaks only TLS: plain text to loopback gets nowhere
        token = uuid.uuid4().hex.encode()
        stage = fleet.build(llb.scratch().mkfile("/token", token))
        try:
            assert stage.builder in ("tlsd", "named")
            assert stage.read_file("/token") == token
        finally:
            stage.close()
