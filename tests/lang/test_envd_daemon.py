"""envd environments built on the real daemons: apt + pip from a loopback wheelhouse, image export,
per-group caching on rebuild, and the pip cache shared between environments."""

import json
import subprocess
import uuid

import pytest

from envd_jupyter.buildkit import connect
from envd_jupyter.lang import EnvdFunctions, Environment
from envd_jupyter.lang._build import solve_environment
from envd_jupyter.lang._explain import explain_rebuild

from wheelhouse import serve, write_wheel


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory):
    """Per-run package names, so neither BuildKit's nor pip's cache can carry over from an earlier run."""
    root = tmp_path_factory.mktemp("wheelhouse")
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}_{tag}" for k in ("alpha", "beta", "gamma")}
    for key, version in (("alpha", "1.0"), ("beta", "1.0"), ("beta", "2.0"), ("gamma", "1.0")):
        write_wheel(root, names[key], version)
    with serve(root) as url:
        yield url, names


@pytest.fixture
def client(any_daemon):
    with connect(f"docker+unix://{any_daemon}") as c:
        yield c


def environment(python_image, index_url, names, beta_version, *, name="envd-test", context=None):
    fns = EnvdFunctions(Environment(name=name, context=context) if context else Environment(name=name))
    fns.base(image=python_image)
    fns.config.pip_index(url=index_url, trust=True)
    fns.install.apt_packages(name=["tree"])
    fns.install.python_packages(name=[names["alpha"]])
    fns.install.python_packages(name=[f"{names['beta']}=={beta_version}"])
    fns.install.python_packages(name=[names["gamma"]])
    fns.runtime.environ(env={"ENVD_TEST": "1"})
    fns.run(["tree --version > /tree-version"])
    return fns.env


def docker(daemon_env, socket_path, *args, timeout=120):
    cmd = [daemon_env["ENVD_DOCKER_CLI"], "-H", f"unix://{socket_path}", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def steps_named(model, name):
    """Vertices of the step itself (merge/diff vertices quote step names inside theirs)."""
    return [v for v in model.vertices.values() if v.name == name]


def test_build_export_run_and_rebuild_one_pip_group(client, any_daemon, daemon_env, wheel_index, tmp_path):
    url, names = wheel_index
    image_name = f"envd-jupyter-test/lang:{uuid.uuid4().hex[:12]}"
    env = environment(daemon_env["ENVD_IMAGE_PYTHON"], url, names, "1.0", context=tmp_path)
    first = solve_environment(client, env, image_name=image_name, network="host", timeout=600)
    try:
        probe = (f"import {names['alpha']}, {names['beta']} as b, {names['gamma']}, os; "
                 "print(b.VERSION, os.environ['ENVD_TEST'], open('/tree-version').read().split()[0])")
        out = docker(daemon_env, any_daemon, "run", "--rm", "--network", "none", image_name, "python", "-c", probe)
        assert out.split() == ["1.0", "1", "tree"]
        config = json.loads(docker(daemon_env, any_daemon, "image", "inspect", image_name))[0]["Config"]
        assert config["Env"][0].startswith("PATH=/opt/envd/venv/bin:")
    finally:
        docker(daemon_env, any_daemon, "image", "rm", "-f", image_name)

    env2 = environment(daemon_env["ENVD_IMAGE_PYTHON"], url, names, "2.0", context=tmp_path)
    second = solve_environment(client, env2, network="host", timeout=600)
    model = second.model
    (apt,) = steps_named(model, "[envd] apt-get install tree")
    assert apt.cached
    for name in (names["alpha"], names["gamma"]):
        (step,) = steps_named(model, f"[envd] pip install {name}")
        assert step.cached, name
    (beta,) = steps_named(model, f"[envd] pip install {names['beta']}==2.0")
    assert not beta.cached and beta.done and not beta.error
    if not {"mergeop", "diffop"} <= client.caps().llb:  # copy-joined pip branches: the join re-ran too
        (join,) = steps_named(model, "[envd] join pip groups into the venv")
        assert not join.cached

    report = explain_rebuild(first.definition, second.definition, progress=model)
    (change,) = report.changes
    assert change.fields == ("argv",) and change.location.line > 0
    assert any(f"{names['beta']}==2.0" in d for d in change.details)
    assert any(names["beta"] in s.name for s in report.ran)
    assert any("apt-get install tree" in s.name for s in report.cached)


def test_two_environments_share_the_pip_cache(client, daemon_env, wheel_index):
    url, names = wheel_index
    python_image = daemon_env["ENVD_IMAGE_PYTHON"]
    one = EnvdFunctions(Environment(name="project-one"))
    one.base(image=python_image)
    one.config.pip_index(url=url, trust=True)
    one.install.python_packages(name=[names["gamma"]])
    two = EnvdFunctions(Environment(name="project-two"))
    two.base(image=python_image)
    two.config.pip_index(url=url, trust=True)
    two.install.python_packages(name=[names["gamma"], names["alpha"]])
    solve_environment(client, one.env, network="host", timeout=600)
    result = solve_environment(client, two.env, network="host", timeout=600)
    (step,) = steps_named(result.model, f"[envd] pip install {names['gamma']} {names['alpha']}")
    assert not step.cached
    log = step.log_text()
    assert f"Using cached {url}{names['gamma'].replace('_', '-')}" in log, log[-2000:]
