"""The daemon contract of scripts/buildkit-up holds (standard library only, so a broken client
cannot hide a broken daemon)."""

import base64
import http.client
import json
import os
import socket
import subprocess
from urllib.parse import quote

import pytest

EXPECTED_MAJOR = {"current": 26, "classic": 26, "old": 20}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("docker", timeout=10)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _call(sock_path: str, method: str, url: str, headers=None) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(sock_path)
    try:
        conn.request(method, url, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _get(sock_path: str, url: str) -> tuple[int, bytes]:
    return _call(sock_path, "GET", url)


def _flavour(request) -> str:
    return request.node.callspec.params["any_daemon"]


def test_ping_answers_ok(any_daemon):
    assert _get(any_daemon, "/_ping") == (200, b"OK")


def test_version_is_the_expected_major(any_daemon, request):
    status, body = _get(any_daemon, "/version")
    assert status == 200
    version = json.loads(body)["Version"]
    assert int(version.split(".")[0]) == EXPECTED_MAJOR[_flavour(request)], version


def test_image_store_matches_flavour(any_daemon, request):
    """Only the containerd image store advertises mergeop/diffop, so the flavours must not blur."""
    status, body = _get(any_daemon, "/info")
    assert status == 200
    driver_status = dict(json.loads(body).get("DriverStatus") or [])
    uses_containerd_store = driver_status.get("driver-type") == "io.containerd.snapshotter.v1"
    assert uses_containerd_store == (_flavour(request) == "current"), driver_status


@pytest.mark.parametrize("image_key", ["ENVD_IMAGE_BUSYBOX", "ENVD_IMAGE_PYTHON"])
def test_base_image_present_with_path(any_daemon, daemon_env, image_key):
    ref = daemon_env[image_key]
    status, body = _get(any_daemon, f"/images/{quote(ref, safe='')}/json")
    assert status == 200, f"{ref} missing: {body[:200]!r}"
    env = json.loads(body)["Config"]["Env"]
    assert any(item.startswith("PATH=") and "/bin" in item for item in env), env


def test_registry_is_loopback_and_answers_v2(daemon_env):
    host, _, port = daemon_env["ENVD_REGISTRY"].partition(":")
    assert host == "127.0.0.1"
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/v2/")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Docker-Distribution-API-Version") == "registry/2.0"
    finally:
        conn.close()


def test_daemon_pushes_to_loopback_registry(any_daemon, daemon_env, request):
    """Push and cache tests rely on every daemon treating the loopback registry as plain http."""
    flavour = _flavour(request)
    repo = f"{daemon_env['ENVD_REGISTRY']}/envd-jupyter-infra/busybox"
    source = quote(daemon_env["ENVD_IMAGE_BUSYBOX"], safe="")
    status, body = _call(any_daemon, "POST", f"/images/{source}/tag?repo={quote(repo, safe='')}&tag={flavour}")
    assert status == 201, body
    try:
        auth = {"X-Registry-Auth": base64.urlsafe_b64encode(b"{}").decode()}
        status, body = _call(any_daemon, "POST", f"/images/{quote(repo, safe='')}/push?tag={flavour}", auth)
        assert status == 200, body
        messages = [json.loads(line) for line in body.splitlines() if line.strip()]
        assert not [m for m in messages if "error" in m or "errorDetail" in m], messages
    finally:
        _call(any_daemon, "DELETE", f"/images/{quote(f'{repo}:{flavour}', safe='')}")
    conn = http.client.HTTPConnection("127.0.0.1", int(daemon_env["ENVD_REGISTRY"].split(":")[1]), timeout=10)
    try:
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        conn.request("HEAD", f"/v2/envd-jupyter-infra/busybox/manifests/{flavour}", headers={"Accept": accept})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_run_network_is_a_known_mode(daemon_env):
    assert daemon_env["ENVD_RUN_NETWORK"] in {"sandbox", "host"}


def test_buildx_plugin_reaches_current_daemon(daemon_env, docker_current):
    """Benchmarks compare against `docker buildx`; it must run from the recorded CLI and config."""
    env = dict(os.environ, DOCKER_CONFIG=daemon_env["ENVD_DOCKER_CONFIG"], DOCKER_HOST=f"unix://{docker_current}")
    result = subprocess.run(
        [daemon_env["ENVD_DOCKER_CLI"], "buildx", "inspect"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Status:" in result.stdout and "running" in result.stdout, result.stdout
