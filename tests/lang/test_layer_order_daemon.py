"""Layer order and pip conflicts on real daemons: a rebuild keeps every unchanged layer below the
changed one (so dockerd's store unpacks only the change), and groups that disagree stop the build."""

import json
import uuid

import pytest

from envd_jupyter.buildkit import connect
from envd_jupyter.buildkit.engine import EngineConnection
from envd_jupyter.lang import EnvdFunctions, Environment
from envd_jupyter.lang.build import solve_environment
from envd_jupyter.lang.errors import PipConflictError
from envd_jupyter.lang.layers import LAYERS_LABEL

from wheelhouse import serve, write_wheel

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheelhouse")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}_{tag}" for k in ("alpha", "beta", "gamma", "delta")}
    for key, version in (("alpha", "1.0"), ("beta", "1.0"), ("beta", "2.0"), ("gamma", "1.0"),
                         ("delta", "1.0"), ("delta", "2.0")):
        write_wheel(root, names[key], version)
    with serve(root) as url:
        yield url, names


def inspect(socket_path, image):
    conn = EngineConnection(socket_path, 30)
    try:
        conn.request("GET", f"/images/{image}/json")
        response = conn.getresponse()
        assert response.status == 200, response.read()
        return json.loads(response.read())
    finally:
        conn.close()


def delete(socket_path, image):
    conn = EngineConnection(socket_path, 60)
    try:
        conn.request("DELETE", f"/images/{image}?force=1")
        conn.getresponse().read()
    finally:
        conn.close()


def environment(python_image, url, groups):
    fns = EnvdFunctions(Environment(name="layer-order"))
    fns.base(image=python_image)
    fns.config.pip_index(url=url, trust=True)
    fns.install.apt_packages(name=["tree"])
    fns.install.apt_packages(name=["jq"])
    for group in groups:
        fns.install.python_packages(name=group)
    fns.run(["dpkg -s tree jq > /dpkg-status"])  # both apt groups are in dpkg's one status file
    return fns.env


def test_a_rebuild_keeps_every_unchanged_layer_below_the_changed_one(docker_current, daemon_env, wheel_index):
    url, names = wheel_index
    groups = [[names["alpha"]], [f"{names['beta']}==1.0"], [names["gamma"]]]
    images = [f"envd-jupyter-test/layer-order:{uuid.uuid4().hex[:12]}" for _ in range(3)]
    base_layers = inspect(docker_current, daemon_env["ENVD_IMAGE_PYTHON"])["RootFS"]["Layers"]
    with connect(f"docker+unix://{docker_current}") as client:
        try:
            first = solve_environment(client, environment(daemon_env["ENVD_IMAGE_PYTHON"], url, groups),
                                      image_name=images[0], network="host", timeout=600)
            for bump, image in ((f"{names['beta']}==2.0", images[1]), (f"{names['beta']}==1.0", images[2])):
                before = inspect(docker_current, images[images.index(image) - 1])
                groups[1] = [bump]
                result = solve_environment(client, environment(daemon_env["ENVD_IMAGE_PYTHON"], url, groups),
                                           image_name=image, network="host", timeout=600)
                after = inspect(docker_current, image)
                old = before["Config"]["Labels"][LAYERS_LABEL].split(",")
                new = after["Config"]["Labels"][LAYERS_LABEL].split(",")
                changed = next(i for i, identity in enumerate(old) if identity not in new)
                assert new[:-1] == old[:changed] + old[changed + 1:], (old, new)
                assert [layer.key for layer in result.build.layers][-1] == "pip[1]"
                # diff ids: the base image's, then the kept layers unchanged, then the changed group on top
                kept = len(base_layers) + len(new) - 1
                old_ids = before["RootFS"]["Layers"]
                old_ids = old_ids[:len(base_layers) + changed] + old_ids[len(base_layers) + changed + 1:]
                assert after["RootFS"]["Layers"][:kept] == old_ids[:kept]
                assert after["RootFS"]["Layers"][:len(base_layers)] == base_layers
            assert first.build.layers and len(new) == 5  # apt chain, venv, 3 pip groups
        finally:
            for image in images:
                delete(docker_current, image)


def test_pip_groups_that_disagree_on_a_version_stop_at_the_merge(any_daemon, daemon_env, wheel_index):
    url, names = wheel_index
    fns = EnvdFunctions(Environment(name="conflict"))
    fns.base(image=daemon_env["ENVD_IMAGE_PYTHON"])
    fns.config.pip_index(url=url, trust=True)
    fns.install.python_packages(name=[names["alpha"], f"{names['delta']}==1.0"])
    fns.install.python_packages(name=[f"{names['delta']}==2.0"])
    fns.run([f"echo never-{uuid.uuid4().hex} > /ran"])
    with connect(f"docker+unix://{any_daemon}") as client:
        with pytest.raises(PipConflictError) as caught:
            solve_environment(client, fns.env, network="host", timeout=600)
    message = str(caught.value)
    assert "\n" not in message
    delta = names["delta"].replace("_", "-")
    assert f"different versions of {delta}: 1.0 (" in message and ", 2.0 (" in message, message
    assert message.count("test_layer_order_daemon.py:") == 2, message
