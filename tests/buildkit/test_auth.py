"""Registry auth on real daemons against loopback registries that demand credentials.

Pushes go to both the htpasswd (basic auth) registry and the bearer-token one (Docker Hub's
scheme: the daemon trades our credentials for a token at the registry's token server).

dockerd 26 (containerd store) pushes from BuildKit and asks our session's Auth service; dockerd
20.10 pushes through its own API (``PushViaDocker``: credentials go in X-Registry-Auth) and pulls
image sources through BuildKit 0.8, which asks the session. Credentials come from a docker
config as users have it: static ``auths``, a ``credsStore`` helper or a ``credHelpers`` entry.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from envd_jupyter.buildkit import BuildKitError, ExportError, Image, PushViaDocker, RegistryAuthError
from envd_jupyter.llb._source import image

from credhelpers import calls, write_config, write_helper

FLAVOURS = ["current", "old"]


@pytest.fixture
def flavour_socket(request, daemon_env):
    return request.param, request.getfixturevalue(f"docker_{request.param}")


@pytest.fixture(params=["basic", "token"])
def registry(request):
    """Each registry that demands credentials: htpasswd basic auth, and bearer tokens."""
    return request.getfixturevalue("auth_registry" if request.param == "basic" else "token_registry")


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """Points DOCKER_CONFIG at a fresh dir and puts a helper dir first on PATH; returns (config dir, bin dir)."""
    config_dir, bin_dir = tmp_path / "docker-config", tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    write_config(config_dir)
    return config_dir, bin_dir


def _configure(source, auth_registry, config_dir, bin_dir):
    host, user, password = auth_registry
    if source == "auths":
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        write_config(config_dir, auths={host: {"auth": basic}})
    elif source == "credsStore":
        write_helper(bin_dir, "envdtest", {host: (user, password)})
        write_config(config_dir, credsStore="envdtest")
    else:
        write_helper(bin_dir, "envdtest", {host: (user, password)})
        write_config(config_dir, credsStore="absent-default", credHelpers={host: "envdtest"})


def _tags(auth_registry, repo):
    """The repository's tags, read with the test user (basic auth, or a bearer token from the realm)."""
    host, user, password = auth_registry
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    url = f"http://{host}/v2/{repo}/tags/list"
    try:
        try:
            return _get_tags(url, basic)
        except urllib.error.HTTPError as exc:
            challenge = exc.headers.get("WWW-Authenticate", "")
            if exc.code != 401 or not challenge.startswith("Bearer "):
                raise
        params = dict(part.split("=", 1) for part in challenge[7:].replace('"', "").split(","))
        realm = params.pop("realm") + "?" + urllib.parse.urlencode(params)
        token_request = urllib.request.Request(realm, headers={"Authorization": basic})
        with urllib.request.urlopen(token_request, timeout=10) as response:
            return _get_tags(url, "Bearer " + json.load(response)["token"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def _get_tags(url, authorization):
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": authorization}),
                                timeout=10) as response:
        return json.load(response).get("tags") or []


def _export(flavour, socket_path, name):
    return Image(name, push=True) if flavour == "current" else PushViaDocker(name, socket_path)


def _progress_text(events) -> str:
    """Everything the progress stream carried: names, errors, statuses and logs."""
    parts = []
    for event in events:
        vertex = event.vertex
        parts += [vertex.name, vertex.error, *vertex.warnings]
        parts += [f"{s.id} {s.name}" for s in vertex.statuses.values()]
        if event.log is not None:
            parts.append(event.log.data.decode(errors="replace"))
    return "\n".join(parts)


def _state(busybox, token):
    return image(busybox).run(f"echo {token} > /pushed", network="none")


@pytest.mark.parametrize("source", ["auths", "credsStore", "credHelpers"])
@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
def test_push_to_auth_registry(flavour_socket, source, client_for, registry, token_registry, docker_config, busybox):
    flavour, socket_path = flavour_socket
    auth_registry = registry
    _configure(source, auth_registry, *docker_config)
    tag = uuid.uuid4().hex[:8]
    repo = f"envd-jupyter-test/auth-{flavour}"
    state = _state(busybox, tag)
    events = []
    client_for(socket_path).solve(state, exports=[_export(flavour, socket_path, f"{auth_registry.host}/{repo}:{tag}")],
                                  on_event=events.append)

    assert tag in _tags(auth_registry, repo)
    if source != "auths":
        assert f"get {auth_registry.host}" in calls(docker_config[1], "envdtest")
    secret = auth_registry.password
    assert secret.encode() not in state.marshal().to_bytes()
    progress = _progress_text(events)
    assert "pushing" in progress.lower() or flavour == "old"  # the push's progress was seen at all
    assert secret not in progress
    if flavour == "current":  # 20.10 pushes through dockerd's API, outside the session
        origin = f"auths in {docker_config[0] / 'config.json'}" if source == "auths" else "helper envdtest"
        _assert_handed_out(events, registry, token_registry, repo + ":pull,push", origin)


def _hand_outs(events, registry) -> list[str]:
    """The "[auth] ..." progress lines about ``registry`` that hand something out, in order, each once
    ("kept on the client" lines, for daemons comparing cached fetchers, hand out nothing)."""
    lines = [e.vertex.name for e in events if e.kind == "completed" and e.vertex.name.startswith("[auth]")]
    return [line for line in dict.fromkeys(lines) if registry.host in line and "kept on the client" not in line]


def _assert_handed_out(events, registry, token_registry, scope: str, origin: str) -> None:
    """The basic-auth registry got raw credentials, once; the token one only tokens fetched on the client
    (the daemon may ask more scopes, to mount blobs from other repositories it pushed to before)."""
    host, lines = registry.host, _hand_outs(events, registry)
    if registry == token_registry:
        assert f"[auth] {scope} token for {host}, from credentials for {host} ({origin})" in lines
        assert all(f" token for {host}, from credentials for {host} ({origin})" in line for line in lines), lines
    else:
        assert lines == [f"[auth] credentials for {host} ({origin})"]


@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
def test_push_without_credentials_fails_naming_the_registry(flavour_socket, client_for, registry,
                                                            docker_config, busybox):
    flavour, socket_path = flavour_socket
    auth_registry = registry
    tag = uuid.uuid4().hex[:8]
    name = f"{auth_registry.host}/envd-jupyter-test/anon:{tag}"
    with pytest.raises((BuildKitError, ExportError)) as failure:
        client_for(socket_path).solve(_state(busybox, tag), exports=[_export(flavour, socket_path, name)])
    message = str(failure.value).splitlines()[0]
    assert any(refusal in message for refusal in ("401 Unauthorized", "no basic auth credentials",
                                                  "authorization failed", "denied"))
    assert f"(no credentials for {auth_registry.host} in {docker_config[0] / 'config.json'})" in message
    assert tag not in _tags(auth_registry, "envd-jupyter-test/anon")


def _push_private(registry, daemon_env, config_dir) -> str:
    """Push an image only this registry has, through dockerd 26 with static auths."""
    from envd_jupyter.buildkit import connect

    name = f"{registry.host}/envd-jupyter-test/private:{uuid.uuid4().hex[:8]}"
    basic = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
    write_config(config_dir, auths={registry.host: {"auth": basic}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(config_dir))
        with connect(f"docker+unix://{daemon_env['ENVD_DOCKER_CURRENT']}") as client:
            client.solve(image(daemon_env["ENVD_IMAGE_BUSYBOX"]).run("echo private > /private", network="none"),
                         exports=[Image(name, push=True)])
    return name


@pytest.fixture(scope="module")
def private_images(auth_registry, token_registry, daemon_env, tmp_path_factory) -> dict[str, str]:
    """registry host -> an image that exists only in that registry."""
    return {registry.host: _push_private(registry, daemon_env, tmp_path_factory.mktemp("push-config"))
            for registry in (auth_registry, token_registry)}


@pytest.fixture
def private_image(private_images, auth_registry) -> str:
    return private_images[auth_registry.host]


@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
def test_pull_from_auth_registry_asks_the_session(flavour_socket, client_for, registry, token_registry, docker_config,
                                                  private_images, tmp_path):
    """The image source is resolved by the daemon's BuildKit, which asks our Auth service (credsStore helper).

    resolve_mode="pull": dockerd otherwise prefers an image already in its store (current pushed it).
    """
    from envd_jupyter.buildkit import LocalDir

    _, socket_path = flavour_socket
    _configure("credsStore", registry, *docker_config)
    out = tmp_path / "out"
    events = []
    client_for(socket_path).solve(image(private_images[registry.host], resolve_mode="pull"), exports=[LocalDir(out)],
                                  on_event=events.append)
    assert (out / "private").read_text() == "private\n"
    assert f"get {registry.host}" in calls(docker_config[1], "envdtest")
    _assert_handed_out(events, registry, token_registry, "envd-jupyter-test/private:pull", "helper envdtest")
    assert registry.password not in _progress_text(events)


@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
def test_pull_without_credentials_fails_naming_the_registry(flavour_socket, client_for, auth_registry,
                                                            docker_config, private_image):
    _, socket_path = flavour_socket
    with pytest.raises(BuildKitError) as failure:
        client_for(socket_path).solve(image(private_image, resolve_mode="pull"))
    assert "401 Unauthorized" in str(failure.value)
    assert f"(no credentials for {auth_registry.host} in {docker_config[0] / 'config.json'})" in str(failure.value)


@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
@pytest.mark.parametrize("broken", ["missing", "failing"])
def test_broken_helper_fails_the_solve_with_its_own_line(flavour_socket, broken, client_for, auth_registry,
                                                         docker_config, private_image):
    _, socket_path = flavour_socket
    config_dir, bin_dir = docker_config
    if broken == "failing":
        write_helper(bin_dir, "envdtest", fail="the keychain is locked")
    write_config(config_dir, credHelpers={auth_registry.host: "envdtest"})
    with pytest.raises(RegistryAuthError) as failure:
        client_for(socket_path).solve(image(private_image, resolve_mode="pull"))
    message = str(failure.value)
    assert "docker-credential-envdtest" in message and auth_registry.host in message
    assert ("the keychain is locked" if broken == "failing" else "not installed") in message
    assert "\n" not in message


def test_broken_helper_on_the_gateway_route(docker_classic, client_for, auth_registry, docker_config, private_image):
    """An image export with a config solves through the gateway; a helper failure still surfaces as itself."""
    config_dir, bin_dir = docker_config
    write_helper(bin_dir, "envdtest", fail="the keychain is locked")
    write_config(config_dir, credsStore="envdtest")
    export = Image(f"envd-jupyter-test/never:{uuid.uuid4().hex[:8]}", attrs={"containerimage.config": "{}"})
    with pytest.raises(RegistryAuthError, match="docker-credential-envdtest failed for " + auth_registry.host):
        client_for(docker_classic).solve(image(private_image, resolve_mode="pull"), exports=[export])
    assert export.ok is False


@pytest.mark.parametrize("flavour_socket", FLAVOURS, indirect=True)
@pytest.mark.parametrize("source", ["auths", "credsStore"])
def test_a_failure_with_credentials_configured_does_not_echo_them(flavour_socket, source, client_for, auth_registry,
                                                                  docker_config, unique):
    _, socket_path = flavour_socket
    _configure(source, auth_registry, *docker_config)
    events = []
    with pytest.raises(BuildKitError) as failure:
        client_for(socket_path).solve(image(f"{auth_registry.host}/envd-jupyter-test/absent:{unique}",
                                            resolve_mode="pull"), on_event=events.append)
    assert auth_registry.host in str(failure.value) and "not found" in str(failure.value)
    assert auth_registry.password not in str(failure.value) + repr(failure.value) + _progress_text(events)
