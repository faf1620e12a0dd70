"""Image exports land in dockerd (and run there), pushes reach the loopback registry, cache specs."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid

import pytest

from envd_jupyter.buildkit._engine import EngineConnection
from envd_jupyter.buildkit import CacheSpec, Image, PushViaDocker
from envd_jupyter.llb._source import image


def _docker(daemon_env, socket_path, *args, timeout=60):
    env = {**os.environ, "DOCKER_CONFIG": daemon_env["ENVD_DOCKER_CONFIG"]}
    return subprocess.run([daemon_env["ENVD_DOCKER_CLI"], "-H", f"unix://{socket_path}", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _image_inspect(socket_path, name):
    conn = EngineConnection(socket_path, 10)
    try:
        conn.request("GET", f"/images/{name}/json")
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _registry_tags(registry, repo):
    with urllib.request.urlopen(f"http://{registry}/v2/{repo}/tags/list", timeout=10) as response:
        return json.load(response).get("tags") or []


def test_image_export_then_docker_run(any_client, any_daemon, daemon_env, busybox, network):
    name = f"envd-jupyter-test/export:{uuid.uuid4().hex[:8]}"
    state = image(busybox).run("echo built-by-envd > /hello", network=network)
    export = Image(name)
    any_client.solve(state, exports=[export])
    try:
        status, info = _image_inspect(any_daemon, name)
        assert status == 200 and info["Id"].startswith("sha256:")
        run = _docker(daemon_env, any_daemon, "run", "--rm", "--network", "none", name, "/bin/cat", "/hello")
        assert run.returncode == 0, run.stderr
        assert run.stdout == "built-by-envd\n"
    finally:
        _docker(daemon_env, any_daemon, "rmi", "-f", name)


def test_push_to_loopback_registry(request, any_client, any_daemon, daemon_env, busybox, network):
    registry = daemon_env["ENVD_REGISTRY"]
    flavour = request.node.callspec.id
    tag = uuid.uuid4().hex[:8]
    name = f"{registry}/envd-jupyter-test/push-{flavour}:{tag}"
    state = image(busybox).run(f"echo {tag} > /tag", network=network)
    # dockerd 26 with the containerd store pushes from the moby exporter; 20.10 and the classic
    # store ignore push=true there, so those push through dockerd's own API.
    export = Image(name, push=True) if flavour == "current" else PushViaDocker(name, any_daemon)
    any_client.solve(state, exports=[export])
    assert tag in _registry_tags(registry, f"envd-jupyter-test/push-{flavour}")


def test_inline_cache_export_everywhere(any_client, any_daemon, daemon_env, busybox, network):
    name = f"envd-jupyter-test/inline:{uuid.uuid4().hex[:8]}"
    state = image(busybox).run("echo cached > /c", network=network)
    result = any_client.solve(state, exports=[Image(name)], cache_exports=[CacheSpec.inline()])
    assert result.exporter_response.get("containerimage.digest", "").startswith("sha256:")
    _docker(daemon_env, any_daemon, "rmi", "-f", name)


def test_registry_cache_export_on_current(docker_current, client_for, daemon_env, busybox, network):
    ref = f"{daemon_env['ENVD_REGISTRY']}/envd-jupyter-test/cache:{uuid.uuid4().hex[:8]}"
    spec = CacheSpec.registry(ref, mode="max")
    client_for(docker_current).solve(image(busybox).run("echo c > /c", network=network), cache_exports=[spec])
    assert ref.rsplit(":", 1)[1] in _registry_tags(daemon_env["ENVD_REGISTRY"], "envd-jupyter-test/cache")


def test_image_config_attr_reaches_dockerd_image(any_client, any_daemon, daemon_env, busybox, network):
    """``containerimage.config`` given as an Image attr ends up in the stored image on every dockerd flavour."""
    name = f"envd-jupyter-test/config:{uuid.uuid4().hex[:8]}"
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["ENVD_PROBE=config-from-attrs", "PATH=/bin"], "WorkingDir": "/probe"},
              "rootfs": {"type": "layers", "diff_ids": []}}
    state = image(busybox).run("mkdir -p /probe", network=network)
    export = Image(name, attrs={"containerimage.config": json.dumps(config)})
    any_client.solve(state, exports=[export])
    try:
        status, info = _image_inspect(any_daemon, name)
        assert status == 200
        assert "ENVD_PROBE=config-from-attrs" in info["Config"]["Env"]
        assert info["Config"]["WorkingDir"] == "/probe"
    finally:
        _docker(daemon_env, any_daemon, "rmi", "-f", name)


def test_failing_run_with_config_export_names_the_step(docker_classic, client_for, busybox, network):
    """The gateway route taken for a config export reports failures like a plain solve."""
    from envd_jupyter.buildkit import SolveError

    state = image(busybox).run("echo about-to-fail; exit 7", network=network)
    export = Image(f"envd-jupyter-test/never:{uuid.uuid4().hex[:8]}", attrs={"containerimage.config": "{}"})
    with pytest.raises(SolveError) as failure:
        client_for(docker_classic).solve(state, exports=[export])
    assert failure.value.exit_code == 7
    assert "exit 7" in str(failure.value)
    assert export.ok is False
