"""The user's buildx builders and docker contexts, read from their files.

The files are written by the real tools (the project's docker 26 CLI and its buildx plugin, into a temp
DOCKER_CONFIG, contacting nothing), so the formats are theirs; a few forms the tools will not write here
(a docker-driver node, an unreadable file, BUILDX_CONFIG elsewhere) are written by hand in the same format.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from envd_jupyter.buildkit import ConnectError, TLSConfig, connect
from envd_jupyter.fleet._sources import buildx_builders, docker_contexts


@pytest.fixture(scope="module")
def user_config(tmp_path_factory, daemon_env) -> dict[str, str]:
    """A DOCKER_CONFIG with contexts and buildx builders made by ``docker context create`` / ``docker buildx create``."""
    root = tmp_path_factory.mktemp("user")
    config = root / "docker"
    config.mkdir()
    (config / "cli-plugins").symlink_to(Path(daemon_env["ENVD_DOCKER_CONFIG"]) / "cli-plugins")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=envd-jupyter-test", "-keyout", root / "key.pem", "-out", root / "cert.pem"],
                   check=True, capture_output=True, timeout=60)
    (root / "ca.pem").write_bytes((root / "cert.pem").read_bytes())  # self-signed: its own CA
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "namespace": "ci", "user": "u"}}],
        "users": [{"name": "u", "user": {}}]}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "KUBECONFIG": str(kubeconfig)}
    env.pop("DOCKER_HOST", None)
    env.pop("BUILDX_CONFIG", None)
    certs = f"ca={root}/ca.pem,cert={root}/cert.pem,key={root}/key.pem"
    commands = [
        ["context", "create", "remote-tls", "--docker", f"host=tcp://10.0.0.5:2376,{certs}"],
        ["context", "create", "over-ssh", "--docker", "host=ssh://deploy@10.0.0.6"],
        ["context", "create", "current", "--docker", f"host=unix://{daemon_env['ENVD_DOCKER_CURRENT']}"],
        ["context", "create", "insecure", "--docker", "host=tcp://10.0.0.7:2376,skip-tls-verify=true"],
        ["buildx", "create", "--name", "dc", "--driver", "docker-container", "current"],
        ["buildx", "create", "--name", "dc-default", "--driver", "docker-container"],  # on DOCKER_HOST
        ["buildx", "create", "--name", "rem", "--driver", "remote", "--driver-opt",
         f"cacert={root}/ca.pem,cert={root}/cert.pem,key={root}/key.pem,servername=bk.example", "tcp://10.0.0.8:1234"],
        ["buildx", "create", "--name", "rem", "--append", "--node", "rem1", "--driver", "remote", "ssh://me@10.0.0.9"],
        ["buildx", "create", "--name", "k8s", "--driver", "kubernetes", "--driver-opt", "namespace=ci"],
    ]
    for command in commands:
        host = {"DOCKER_HOST": f"unix://{daemon_env['ENVD_DOCKER_CURRENT']}"} if "dc-default" in command else {}
        done = subprocess.run([daemon_env["ENVD_DOCKER_CLI"], *command], env={**env, **host}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"docker {' '.join(command)}: {done.stderr}"
    return {"DOCKER_CONFIG": str(config), "root": str(root)}


def test_docker_contexts_as_docker_context_ls_lists_them(user_config, daemon_env):
    root = Path(user_config["root"])
    found = docker_contexts({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"]})
    assert found.addresses() == {
        "default": "docker+unix:///var/run/docker.sock",
        "current": f"docker+unix://{daemon_env['ENVD_DOCKER_CURRENT']}",
        "over-ssh": "docker+ssh://deploy@10.0.0.6",
        "remote-tls": "docker+tcp://10.0.0.5:2376",
    }
    tls_dir = (Path(user_config["DOCKER_CONFIG"]) / "contexts" / "tls" / hashlib.sha256(b"remote-tls").hexdigest()
               / "docker")
    assert found["remote-tls"].tls == TLSConfig(ca=tls_dir / "ca.pem", cert=tls_dir / "cert.pem", key=tls_dir / "key.pem")
    assert (tls_dir / "ca.pem").read_text() == (root / "ca.pem").read_text()
    assert found["over-ssh"].tls is None and found["current"].origin == "docker context current"
    assert found.skipped["insecure"].startswith("docker context insecure: SkipTLSVerify is set; an unverified daemon")


def test_default_context_follows_docker_host(user_config):
    found = docker_contexts({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"], "DOCKER_HOST": "ssh://ci@builder"})
    assert found["default"].address == "docker+ssh://ci@builder" and "DOCKER_HOST" in found["default"].origin
    found = docker_contexts({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"], "DOCKER_HOST": "npipe:////./pipe/x"})
    assert "default" not in found and "npipe" in found.skipped["default"]


def test_buildx_builders_map_each_driver_to_an_address(user_config, daemon_env):
    root = Path(user_config["root"])
    found = buildx_builders({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"]})
    current = daemon_env["ENVD_DOCKER_CURRENT"].replace("/", "%2F")
    assert found.addresses() == {
        "dc": "docker-container://buildx_buildkit_dc0?context=current",
        "dc-default": f"docker-container://buildx_buildkit_dc-default0?host=unix%3A%2F%2F{current}",
        "rem/rem0": "tcp://10.0.0.8:1234",
        "rem/rem1": "ssh://me@10.0.0.9",
    }
    assert found["rem/rem0"].tls == TLSConfig(ca=str(root / "ca.pem"), cert=str(root / "cert.pem"),
                                              key=str(root / "key.pem"), server_name="bk.example")
    assert found["rem/rem1"].tls is None
    assert found["dc"].origin == "buildx builder dc node dc0 (docker-container driver)"
    assert list(found.skipped) == ["k8s"] and "kube-pod://POD?namespace=NS" in found.skipped["k8s"]


def test_buildx_config_overrides_the_docker_config_dir(user_config, tmp_path):
    instances = tmp_path / "instances"
    instances.mkdir()
    (instances / "local").write_text(json.dumps({"Name": "local", "Driver": "docker", "Nodes": [
        {"Name": "local0", "Endpoint": "over-ssh", "Platforms": None, "DriverOpts": None, "Flags": None, "Files": None}]}))
    (instances / "by-host").write_text(json.dumps({"name": "by-host", "driver": "docker", "nodes": [
        {"name": "n", "endpoint": "tcp://127.0.0.1:2375"}]}))  # Go reads keys case-insensitively
    (instances / "gone").write_text(json.dumps({"Name": "gone", "Driver": "docker", "Nodes": [{"Name": "g", "Endpoint": "nope"}]}))
    (instances / "broken").write_text("{not json")
    (instances / "odd").write_text(json.dumps({"Name": "odd", "Driver": "qemu", "Nodes": [{"Name": "o0"}]}))
    (instances / "dc-default").write_text(json.dumps({"Name": "dc-default", "Driver": "docker-container", "Nodes": [
        {"Name": "d0", "Endpoint": "default"}]}))
    found = buildx_builders({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"], "BUILDX_CONFIG": str(tmp_path)})
    assert found.addresses() == {"local": "docker+ssh://deploy@10.0.0.6", "by-host": "docker+tcp://127.0.0.1:2375",
                                 "dc-default": "docker-container://buildx_buildkit_d0"}
    assert found.skipped["gone"].endswith("no docker context 'nope'")
    assert found.skipped["broken"].startswith(f"{instances / 'broken'}: unreadable (JSONDecodeError")
    assert found.skipped["odd"].endswith("unknown driver 'qemu'")


def test_no_config_at_all_finds_only_the_default_context(tmp_path):
    assert buildx_builders({"DOCKER_CONFIG": str(tmp_path)}) == {}
    assert docker_contexts({"DOCKER_CONFIG": str(tmp_path)}).addresses() == {"default": "docker+unix:///var/run/docker.sock"}


def test_found_addresses_connect(user_config, daemon_env, monkeypatch):
    """The context's address reaches its daemon; the docker-container builder's runs the real docker CLI,
    whose answer (no such container: buildx never booted it) is the one-line reason."""
    found = docker_contexts({"DOCKER_CONFIG": user_config["DOCKER_CONFIG"]})
    with connect(found["current"].address) as client:
        assert client.workers()
    monkeypatch.setenv("DOCKER_CONFIG", user_config["DOCKER_CONFIG"])
    monkeypatch.setenv("PATH", f"{Path(daemon_env['ENVD_DOCKER_CLI']).parent}:{os.environ['PATH']}")
    for name in ("dc", "dc-default"):  # on the context "current"; on the DOCKER_HOST buildx recorded
        with pytest.raises(ConnectError) as refused:
            connect(buildx_builders()[name].address, timeout=10)
        message = str(refused.value)
        assert "\n" not in message and "docker exited with 1: Error response from daemon: No such container: " \
            f"buildx_buildkit_{name}0" in message
