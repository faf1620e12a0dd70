"""Layer order and pip conflicts on real daemons: a rebuild keeps every unchanged layer below the
changed one (so dockerd's store unpacks only the change), and groups that disagree stop the build."""

import json
import uuid
from inspect import currentframe

import pytest

from envd_jupyter.buildkit import SolveError, connect
from envd_jupyter.buildkit._engine import EngineConnection
from envd_jupyter.lang import EnvdFunctions, Environment
from envd_jupyter.lang._build import solve_environment
from envd_jupyter.lang._errors import PipConflictError
from envd_jupyter.lang._layers import LAYERS_LABEL

from wheelhouse import serve, write_wheel


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheelhouse")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}_{tag}" for k in ("alpha", "beta", "gamma", "delta")}
    for key, version in (("alpha", "1.0"), ("beta", "1.0"), ("beta", "2.0"), ("gamma", "1.0"),
                         ("delta", "1.0"), ("delta", "2.0"), ("delta", "3.0")):
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
    python_image = daemon_env["ENVD_IMAGE_PYTHON"]
    images = [f"envd-jupyter-test/layer-order:{uuid.uuid4().hex[:12]}" for _ in range(3)]
    base_layers = inspect(docker_current, python_image)["RootFS"]["Layers"]

    def build(beta_version, image):
        groups = [[names["alpha"]], [f"{names['beta']}=={beta_version}"], [names["gamma"]]]
        result = solve_environment(client, environment(python_image, url, groups), image_name=image,
                                   network="host", timeout=600)
        config = inspect(docker_current, image)
        layers = config["RootFS"]["Layers"]
        assert layers[:len(base_layers)] == base_layers
        # the label (one identity per merge input) and the managed diff ids (apt's chain may give two)
        return result, config["Config"]["Labels"][LAYERS_LABEL].split(","), layers[len(base_layers):-1]

    with connect(f"docker+unix://{docker_current}") as client:
        try:
            _, label0, managed0 = build("1.0", images[0])
            bumped, label1, managed1 = build("2.0", images[1])
            changed = next(i for i, identity in enumerate(label0) if identity not in label1)
            assert label1[:-1] == label0[:changed] + label0[changed + 1:], (label0, label1)
            assert [layer.key for layer in bumped.build.layers][-1] == "pip[1]"
            dropped = [layer for layer in managed0 if layer not in managed1]
            assert len(dropped) == 1 and managed1[-1] not in managed0
            assert managed1[:-1] == [layer for layer in managed0 if layer not in dropped]
            # back to 1.0: the first image shares every layer, so its order (and layers) come back whole
            _, label2, managed2 = build("1.0", images[2])
            assert label2 == label0 and managed2 == managed0
            assert len(label0) == 5  # apt chain, venv, 3 pip groups
        finally:
            for image in images:
                delete(docker_current, image)


def test_without_an_image_the_group_that_ran_goes_on_top(docker_current, daemon_env, wheel_index):
    """No export, so maybe no history: the layers served from cache predate the build and stay below."""
    url, names = wheel_index
    groups = [[f"{names['delta']}==1.0"], [names["gamma"]], [names["alpha"]]]
    with connect(f"docker+unix://{docker_current}") as client:
        solve_environment(client, environment(daemon_env["ENVD_IMAGE_PYTHON"], url, groups), network="host",
                          timeout=600)
        groups[0] = [f"{names['delta']}==3.0"]
        second = solve_environment(client, environment(daemon_env["ENVD_IMAGE_PYTHON"], url, groups),
                                   network="host", timeout=600)
    assert [layer.key for layer in second.build.layers][-1] == "pip[0]"
    (step,) = [v for v in second.model.vertices.values() if v.name == f"[envd] pip install {names['delta']}==3.0"]
    assert not step.cached


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


def test_a_branch_failing_while_being_weighed_names_its_step_line_and_log(docker_current, daemon_env, wheel_index):
    url, names = wheel_index
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    fns = EnvdFunctions(Environment(name="failing"))
    fns.base(image=daemon_env["ENVD_IMAGE_PYTHON"])
    fns.config.pip_index(url=url, trust=True)
    fns.install.python_packages(name=[names["gamma"], f"{names['delta']}==1.0"])  # two new groups: weighed first
    fns.install.python_packages(name=[missing])
    line = currentframe().f_lineno - 1
    with connect(f"docker+unix://{docker_current}") as client:
        with pytest.raises(SolveError) as caught:
            solve_environment(client, fns.env, network="host", timeout=600)
    head = str(caught.value).splitlines()[0]  # then the step's last log lines
    assert f"step '[envd] pip install {missing}' (" in head and f"test_layer_order_daemon.py:{line})" in head, head
    assert "exit code 1" in head, head
    assert any("No matching distribution" in entry for entry in caught.value.log_tail), caught.value.log_tail
