"""Fixtures for the real daemons that scripts/buildkit-up and scripts/fleet-up start (``fleet.project_env``)."""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from envd_jupyter.fleet import FleetError, project_builders, project_env

_UP_HINT = "daemons not up: run scripts/buildkit-up"
_FLAVOURS = {"current": "ENVD_DOCKER_CURRENT", "classic": "ENVD_DOCKER_CLASSIC", "old": "ENVD_DOCKER_OLD"}
_DAEMON_FIXTURES = frozenset({"daemon_env", "docker_current", "docker_classic", "docker_old", "any_daemon",
                              "fleet_daemons"})
_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def pytest_configure(config):
    """Builds the tests make in kernels are recorded in a private archive, never the user's own.

    Ctrl-C is Python's again even when the suite was started in the background of a shell (which
    ignores SIGINT for such jobs, and children inherit that): the interrupt tests need a real one."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "ENVD_JUPYTER_HISTORY" not in os.environ:
        import tempfile

        os.environ["ENVD_JUPYTER_HISTORY"] = os.path.join(tempfile.mkdtemp(prefix="envd-history-"), "history.sqlite3")


def pytest_collection_modifyitems(items):
    """Mark every test that reaches a daemon fixture (itself or through another fixture) ``daemon``,
    so ``-m "not daemon"`` selects exactly the offline suite and ``-m daemon`` the rest."""
    for item in items:
        if _DAEMON_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.daemon)


def _state_dir() -> Path:
    return Path(os.environ.get("ENVD_JUPYTER_STATE", "/var/lib/envd-jupyter"))


def _socket_answers(path: str) -> bool:
    """A cheap liveness probe (/_ping) so a dead daemon fails fast instead of hanging a test."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


@pytest.fixture(scope="session")
def daemon_env() -> dict[str, str]:
    try:
        return project_env()
    except FleetError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def fleet_daemons(daemon_env) -> dict[str, str]:
    """The three equal builders of scripts/fleet-up (started here on first use: they cost memory only then)."""
    return _fleet_up()


@pytest.fixture
def fleet_up():
    """Call it to run scripts/fleet-up again (after a test killed one of the fleet daemons)."""
    return _fleet_up


def _fleet_up() -> dict[str, str]:
    """Runs scripts/fleet-up (idempotent; restarts a killed fleet daemon), bounded; name -> address."""
    try:
        done = subprocess.run([str(_SCRIPTS / "fleet-up")], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/fleet-up did not finish within 300s")
    if done.returncode != 0:
        pytest.fail(f"scripts/fleet-up failed: {done.stderr.strip()[-2000:]}")
    builders = project_builders(which="fleet")
    for name, address in builders.items():
        if not _socket_answers(address.removeprefix("docker+unix://")):
            pytest.fail(f"fleet daemon {name} ({address}) does not answer after scripts/fleet-up")
    return builders


def _live_socket(env: dict[str, str], key: str) -> str:
    path = env.get(key)
    if path is None:
        pytest.fail(f"{_UP_HINT} ({key} missing from {_state_dir() / 'env'})")
    if not _socket_answers(path):
        pytest.fail(f"{_UP_HINT} ({key}={path} does not answer)")
    return path


@pytest.fixture(scope="session")
def docker_current(daemon_env) -> str:
    return _live_socket(daemon_env, "ENVD_DOCKER_CURRENT")


@pytest.fixture(scope="session")
def docker_classic(daemon_env) -> str:
    return _live_socket(daemon_env, "ENVD_DOCKER_CLASSIC")


@pytest.fixture(scope="session")
def docker_old(daemon_env) -> str:
    return _live_socket(daemon_env, "ENVD_DOCKER_OLD")


@pytest.fixture(scope="session", params=list(_FLAVOURS), ids=list(_FLAVOURS))
def any_daemon(request, daemon_env) -> str:
    return _live_socket(daemon_env, _FLAVOURS[request.param])


class AuthRegistry(tuple):
    """(host, user, password) of the loopback registry that demands htpasswd auth."""

    host = property(lambda self: self[0])
    user = property(lambda self: self[1])
    password = property(lambda self: self[2])


@pytest.fixture(scope="session")
def auth_registry(daemon_env) -> AuthRegistry:
    keys = ("ENVD_REGISTRY_AUTH", "ENVD_REGISTRY_AUTH_USER", "ENVD_REGISTRY_AUTH_PASSWORD_FILE")
    missing = [key for key in keys if key not in daemon_env]
    if missing:
        pytest.fail(f"{_UP_HINT} ({', '.join(missing)} missing from {_state_dir() / 'env'})")
    password = Path(daemon_env["ENVD_REGISTRY_AUTH_PASSWORD_FILE"]).read_text().strip()
    return AuthRegistry((daemon_env["ENVD_REGISTRY_AUTH"], daemon_env["ENVD_REGISTRY_AUTH_USER"], password))


@pytest.fixture(scope="session")
def token_registry(daemon_env, auth_registry) -> AuthRegistry:
    """The loopback registry that demands bearer tokens (Docker Hub's scheme); same user and password."""
    if "ENVD_REGISTRY_TOKEN" not in daemon_env:
        pytest.fail(f"{_UP_HINT} (ENVD_REGISTRY_TOKEN missing from {_state_dir() / 'env'})")
    return AuthRegistry((daemon_env["ENVD_REGISTRY_TOKEN"], auth_registry.user, auth_registry.password))


class BuildxBuild(tuple):
    """(ref, token) of a build ``docker buildx build`` made on a project daemon."""

    ref = property(lambda self: self[0])
    token = property(lambda self: self[1])


@pytest.fixture
def buildx_build(daemon_env, tmp_path):
    """``buildx_build(socket)``: a fresh two-RUN Dockerfile build by the project's peer CLI
    (the ``docker buildx`` plugin, docker driver), so BuildKit records a build no code of ours made."""
    import json
    import subprocess
    import uuid

    def build(socket_path: str) -> BuildxBuild:
        token = uuid.uuid4().hex[:12]
        context = tmp_path / f"ctx-{token}"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {daemon_env['ENVD_IMAGE_BUSYBOX']}\n"
                                            f"RUN echo buildx-{token} > /token\nRUN echo two > /two\n")
        env = dict(os.environ, DOCKER_CONFIG=daemon_env["ENVD_DOCKER_CONFIG"], DOCKER_HOST=f"unix://{socket_path}")
        metadata = context / "metadata.json"
        done = subprocess.run([daemon_env["ENVD_DOCKER_CLI"], "buildx", "build", "--builder", "default",
                               "--progress", "plain", "--metadata-file", str(metadata),
                               "-t", "envd-jupyter/history-test:latest", str(context)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-800:]
        return BuildxBuild((json.loads(metadata.read_text())["buildx.build.ref"].split("/")[-1], token))

    return build


@pytest.fixture(scope="session")
def tls_dockerd(tmp_path_factory, daemon_env):
    """(tcp://127.0.0.1:PORT, client cert dir in docker's layout) of a throwaway dockerd that speaks only
    mutual TLS (scripts/tls-dockerd); stopped after the session."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "tls-dockerd"
    directory = tmp_path_factory.mktemp("tls-dockerd")
    started = subprocess.run([str(script), "start", str(directory)], capture_output=True, text=True, timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        yield started.stdout.strip(), directory / "client"
    finally:
        subprocess.run([str(script), "stop", str(directory)], capture_output=True, timeout=120)
