"""TLS through the magics (issue 17): ``Envd.tls`` for ``Envd.builder`` / ``--builder ADDR``, per-builder
``{address, tls}`` in ``Envd.builders`` (``--builder NAME``) and fleet files, against a real
``dockerd --tlsverify`` (scripts/tls-dockerd); a bad setting is one line naming it."""

from __future__ import annotations

import uuid

import pytest
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter.scheduler import SchedulingError

DOCKER_TLS_VARIABLES = ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS")
CERTS = {"ca": "certs/ca.pem", "cert": "certs/cert.pem", "key": "certs/key.pem"}


@pytest.fixture
def shell(tls_dockerd, tmp_path, monkeypatch):
    """A shell in a directory holding the TLS dockerd's client certificates as ./certs."""
    for name in DOCKER_TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "certs").symlink_to(tls_dockerd[1])
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    yield ip
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


@pytest.fixture
def target(tls_dockerd):
    return tls_dockerd[0].replace("tcp://", "docker+tcp://")


def envd(ip, line: str, body: str):
    return ip.run_cell_magic("envd", line, body)


def token_cell(ip, line: str) -> None:
    """Build a file with a fresh token on the builder ``line`` names and read it back through the stage."""
    token = uuid.uuid4().hex
    envd(ip, line, f'llb.scratch().mkfile("/token", b"{token}")')
    assert ip.run_line_magic("envd_cat", f"{line.split()[0]} /token") == token


def test_envd_tls_carries_builder_addresses(shell, target, tmp_path):
    magics = shell.magics_manager.registry["Envd"]
    magics.tls = dict(CERTS)
    assert magics.tls["ca"] == str(tmp_path / "certs/ca.pem") and magics.tls["verify"] is True  # absolute now
    token_cell(shell, f"by_flag --builder {target}")
    magics.builder = target
    token_cell(shell, "by_setting")


def test_without_tls_the_tls_daemon_is_not_reached(shell, target):
    """Loopback may go without TLS, but this daemon speaks only TLS: the builder is down and says why."""
    with pytest.raises(SchedulingError, match="healthy-filter"):
        envd(shell, f"nope --builder {target}", 'llb.scratch().mkfile("/x", b"x")')
    shown = shell.run_line_magic("envd_builders", f"--builder {target}")._repr_mimebundle_()["text/plain"]
    assert "down: no BuildKit daemon answered" in shown and "400 Bad Request" in shown


def test_a_builder_by_name_and_a_fleet_file_carry_their_own_tls(shell, target, tmp_path):
    magics = shell.magics_manager.registry["Envd"]
    magics.builders = {"tlsd": {"address": target, "tls": {**CERTS, "server_name": "localhost"}},
                       "local": "docker+unix:///nonexistent.sock"}
    token_cell(shell, "by_name --builder tlsd")
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(f"builders:\n  tlsd: {{address: {target}, tls: {{ca: certs/ca.pem, cert: certs/cert.pem, "
                          "key: certs/key.pem}}\n")
    token_cell(shell, f"by_fleet --fleet {fleet_file}")


@pytest.mark.parametrize("setting, expected", [
    ('Envd.tls = {"ca": "missing.pem"}', "Envd.tls.ca: {dir}/missing.pem: no such file"),
    ("Envd.tls = True", "Envd.tls: true says nothing about certificates"),
    ('Envd.builders = {"r": {"address": "docker+tcp://h:2376", "tls": {"cert": "certs/cert.pem"}}}',
     "Envd.builders.r.tls: cert and key go together"),
    ('Envd.builders = {"r": {"adress": "docker+tcp://h:2376"}}', "Envd.builders.r: unknown key 'adress'"),
])
def test_a_bad_setting_is_one_line_naming_it(shell, tmp_path, caplog, setting, expected):
    magics = shell.magics_manager.registry["Envd"]
    shell.run_line_magic("config", setting)  # IPython logs the TraitError as one error record
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith(expected.format(dir=tmp_path)) and "\n" not in record.getMessage()
    assert magics.tls is None and magics.builders == {}


def test_a_bad_tls_in_pyproject_is_one_line_and_the_rest_loads(shell, tmp_path, capsys):
    shell.run_line_magic("unload_ext", "envd_jupyter")
    (tmp_path / "pyproject.toml").write_text('[tool.envd_jupyter]\ntls = { ca = "nope.pem" }\ntimeout = 30.0\n')
    shell.run_line_magic("load_ext", "envd_jupyter")
    err = capsys.readouterr().err
    assert f"tls: Envd.tls.ca: {tmp_path}/nope.pem: no such file" in err and len(err.strip().splitlines()) == 1
    magics = shell.magics_manager.registry["Envd"]
    assert magics.tls is None and magics.timeout == 30.0
