"""The envd v1 rules that can build without the internet, built on the real containerd-store daemon
from a build.envd (evaluated in the Starlark worker) and from a cog.yaml: apt, pip from the loopback
wheelhouse, Python, shells, and the runtime settings as the exported image carries them."""

import json
import subprocess
import uuid

import pytest

from envd_jupyter.buildkit import connect
from envd_jupyter.lang import Environment, from_cog_yaml, load_file
from envd_jupyter.lang._build import solve_environment

from wheelhouse import serve, write_wheel

BUILD = '''
def build():
    base(image="{image}")
    install.python(version="3.11")
    config.pip_index(url="{url}", trust=True)
    install.apt_packages(name=["tree"])
    shell("zsh")
    install.python_packages(name=["{alpha}"])
    runtime.environ(env={{"MODE": "dev"}}, extra_path=["/opt/tools/bin"])
    runtime.expose(envd_port=8080, service="web")
    runtime.command(commands={{"serve": "python -m http.server"}})
    runtime.daemon(commands=[["python", "-m", "http.server", "8080"]])
    runtime.init(commands=["echo ready"])
    runtime.mount(host_path=data.envd(name="dataset"), envd_path="/data")
    config.entrypoint(args=["python"])
    config.repo(url="https://github.com/org/repo")
    config.gpu(count=1)
    run(["tree --version > /tree-version"])
'''

COG = '''build:
  python_version: "3.11"
  python_packages: ["{alpha}"]
  run: ["echo built > /src-built"]
environment: ["GREETING=hello"]
predict: "predict.py:Predictor"
'''


@pytest.fixture(scope="module")
def wheel_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheelhouse")
    alpha = f"alpha_{uuid.uuid4().hex[:8]}"
    write_wheel(root, alpha, "1.0")
    with serve(root) as url:
        yield url, alpha


def docker(daemon_env, socket_path, *args):
    out = subprocess.run([daemon_env["ENVD_DOCKER_CLI"], "-H", f"unix://{socket_path}", *args],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def built(docker_current, daemon_env):
    """Build an environment into a fresh image on the containerd-store daemon; remove the image after."""
    names = []

    def build(env):
        name = f"envd-jupyter-test/rules:{uuid.uuid4().hex[:12]}"
        names.append(name)
        with connect(f"docker+unix://{docker_current}") as client:
            solve_environment(client, env, image_name=name, network="host", timeout=900)
        config = json.loads(docker(daemon_env, docker_current, "image", "inspect", name))[0]["Config"]
        return name, config

    yield build
    for name in names:
        docker(daemon_env, docker_current, "image", "rm", "-f", name)


def test_a_build_envd_with_apt_pip_python_shell_and_runtime_settings(built, daemon_env, docker_current,
                                                                    wheel_index, tmp_path):
    url, alpha = wheel_index
    (tmp_path / "build.envd").write_text(BUILD.format(image=daemon_env["ENVD_IMAGE_PYTHON"], url=url, alpha=alpha))
    name, config = built(load_file(tmp_path / "build.envd"))

    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/envd/venv/bin:/opt/tools/bin:") and env["MODE"] == "dev"
    assert env["SHELL"] == "/usr/bin/zsh" and config["Entrypoint"] == ["python"]
    assert "8080/tcp" in config["ExposedPorts"]
    labels = config["Labels"]
    runtime = json.loads(labels["ai.tensorchord.envd.graph.runtime"])
    assert runtime["commands"] == {"serve": "python -m http.server"}
    assert runtime["daemon"] == [["python", "-m", "http.server", "8080"]] and runtime["init_script"] == [["echo ready"]]
    assert json.loads(labels["org.envd-jupyter.runtime"]) == {
        "mounts": [{"source": "envd://dataset", "destination": "/data"}], "gpus": 1}
    assert json.loads(labels["ai.tensorchord.envd.repo"]) == {"url": "https://github.com/org/repo"}

    probe = (f"import {alpha}, os, sys, subprocess; print({alpha}.VERSION, sys.version_info[:2] == (3, 11), "
             "os.path.isdir('/data'), open('/tree-version').read().split()[0], "
             "subprocess.run(['zsh', '-c', 'echo $ZSH_NAME'], capture_output=True, text=True).stdout.strip())")
    out = docker(daemon_env, docker_current, "run", "--rm", "--network", "none", name, "-c", probe)
    assert out.split() == ["1.0", "True", "True", "tree", "zsh"]


def test_a_cog_yaml_builds_with_its_environment_and_source(built, daemon_env, docker_current, wheel_index,
                                                           tmp_path):
    url, alpha = wheel_index
    (tmp_path / "cog.yaml").write_text(COG.format(alpha=alpha))
    (tmp_path / "predict.py").write_text("class Predictor:\n    pass\n")
    offline = Environment(context=tmp_path, pip_index={"url": url, "extra_url": "", "trust": True})
    env = from_cog_yaml(tmp_path / "cog.yaml", base_image=daemon_env["ENVD_IMAGE_PYTHON"], env=offline, sdk=False)
    name, config = built(env)

    assert config["WorkingDir"] == "/src" and config["Cmd"] == ["python", "-m", "cog.server.http"]
    env_vars = dict(item.split("=", 1) for item in config["Env"])
    assert env_vars["GREETING"] == "hello" and env_vars["COG_PREDICT_TYPE_STUB"] == "predict.py:Predictor"
    probe = f"import {alpha}, predict; print({alpha}.VERSION, open('/src-built').read().strip())"
    out = docker(daemon_env, docker_current, "run", "--rm", "--network", "none", "--entrypoint", "python", name,
                 "-c", probe)
    assert out.split() == ["1.0", "built"]
