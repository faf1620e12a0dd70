"""Graph shape of every envd v1 rule: what each records and what the staged graph holds for it.

Each case is a build.envd body with one rule (plus what it needs), compiled in the parallel form
(base → managed branches joined by a merge → user steps) and the sequential one; the checks name
the ops envd's compiler would make for the rule, the merge layer it lands in, and its image config.
``test_every_rule_has_a_case`` keeps this table and envd's list of rules the same.
"""

import json

import pytest

from envd_jupyter.lang import EnvdArgumentError, EnvdFunctions, compile_environment, exec_cell
from envd_jupyter.lang._opview import op_views
from envd_jupyter.lang._toolchains import CURL_IMAGE, MICROMAMBA_IMAGE

ENVD_V1_RULES = {  # pkg/lang/frontend/starlark/v1 (universe, install, config, io, runtime, data)
    "base", "shell", "run", "git_config", "include",
    "install.python", "install.conda", "install.uv", "install.pixi", "install.r_lang", "install.julia",
    "install.rust", "install.go", "install.nodejs", "install.apt_packages", "install.python_packages",
    "install.conda_packages", "install.r_packages", "install.julia_packages", "install.cuda",
    "install.vscode_extensions", "install.codex",
    "config.apt_source", "config.pip_index", "config.cran_mirror", "config.jupyter", "config.conda_channel",
    "config.gpu", "config.julia_pkg_server", "config.rstudio_server", "config.entrypoint", "config.repo",
    "config.owner", "config.shm_size",
    "io.copy", "io.http",
    "runtime.command", "runtime.expose", "runtime.daemon", "runtime.environ", "runtime.mount", "runtime.init",
    "data.envd",
}


def compiled(body: str, *, parallel: bool = True):
    env = exec_cell('base(image="ubuntu:22.04")\n' + body, name="build.envd")
    build = compile_environment(env, parallel=parallel)
    views = op_views(build.marshal(local_unique_id="rules"))
    return env, build, views


def names(views) -> list[str]:
    return [view.name for view in views.values() if view.name]


def labels(build) -> dict[str, str]:
    return dict(build.image_config.labels)


def runtime_graph(build) -> dict:
    return json.loads(labels(build)["ai.tensorchord.envd.graph.runtime"])


def layer_keys(build) -> set[str]:
    return {layer.key for layer in build.layers}


def input_names(views, name: str) -> list[str]:
    """Names of the ops feeding the op called ``name``."""
    (view,) = [v for v in views.values() if v.name == name]
    return [views[d].name for d in view.inputs]


def check_base(env, build, views):
    assert env.base_image == "ubuntu:22.04"
    assert names(views)[0] == "docker-image://docker.io/library/ubuntu:22.04"


def check_shell(env, build, views):
    assert "[envd] apt-get install zsh" in names(views) and dict(build.image_config.env)["SHELL"] == "/usr/bin/zsh"


def check_run(env, build, views):
    assert names(views)[-1] == "[user] echo hi"


def check_git_config(env, build, views):  # written into dev images only, as envd does
    (file_op,) = [v for v in views.values() if v.name == "[envd] git config"]
    (action,) = file_op.body["file"]["actions"]
    assert action["mkfile"]["path"] == "/home/envd/.gitconfig"
    assert b"name = me" in action["mkfile"]["data"] and "git_config" in layer_keys(build)


def check_include(env, build, views):
    assert "[envd] apt-get install git" in names(views)


def check_python(env, build, views):
    assert "[envd] python 3.10 venv" in names(views) and layer_keys(build) == {"python"}


def check_conda(env, build, views):
    assert f"docker-image://{MICROMAMBA_IMAGE}" in names(views)
    assert "[envd] create conda environment python=3.11" in names(views)
    assert input_names(views, "[envd] python 3.11 venv on the conda environment") == [
        "[envd] create conda environment python=3.11"]


def check_uv(env, build, views):
    assert input_names(views, "[envd] download uv 0.9.22") == [f"docker-image://{CURL_IMAGE}"]
    assert "[envd] install uv Python=3.12" in names(views) and layer_keys(build) == {"uv[0]"}
    assert dict(build.image_config.env)["UV_LINK_MODE"] == "copy"


def check_pixi(env, build, views):
    (config,) = [v for v in views.values() if v.name == "[envd] create pixi config file"]
    assert b'index-url = "https://pypi.example/simple"' in config.body["file"]["actions"][0]["mkfile"]["data"]


def check_r_lang(env, build, views):  # R installs with apt: in the apt chain, after the apt groups
    assert input_names(views, "[envd] add R public GPG key") == ["[envd] apt-get install gpg"]
    assert layer_keys(build) == {"apt"}


def check_julia(env, build, views):
    assert "[envd] unpack julia archive under /opt/julia" in names(views)
    assert build.image_config.path[0] == "/opt/julia/bin"


def check_rust(env, build, views):
    assert "[envd] install rust" in names(views) and dict(build.image_config.env)["CARGO_HOME"] == "/opt/rust"


def check_go(env, build, views):
    assert "[envd] install go 1.25.3" in names(views) and "/usr/local/go/bin" in build.image_config.path


def check_nodejs(env, build, views):
    assert "[envd] prepare nodejs 20.11.1" in names(views) and "/opt/nodejs/bin" in build.image_config.path


def check_apt_packages(env, build, views):
    assert "[envd] apt-get install git curl" in names(views)
    assert json.loads(labels(build)["ai.tensorchord.envd.apt.packages"]) == ["git", "curl"]


def check_python_packages(env, build, views):
    assert input_names(views, "[envd] pip install numpy") == ["[envd] python (base image) venv"]
    assert json.loads(labels(build)["ai.tensorchord.envd.pypi.commands"]) == ["numpy"]


def check_conda_packages(env, build, views):  # on the conda environment, beside the venv
    assert input_names(views, "[envd] conda install numpy") == ["[envd] create conda environment python=3.11"]
    assert {"python", "conda[0]"} == layer_keys(build)


def check_r_packages(env, build, views):
    assert input_names(views, "[envd] installing R packages: dplyr") == [
        "[envd] apt install R environment from CRAN repository"]
    (r_op,) = [v for v in views.values() if v.name == "[envd] installing R packages: dplyr"]
    assert "https://cran.rstudio.com" in r_op.body["exec"]["meta"]["args"][-1]


def check_julia_packages(env, build, views):
    assert input_names(views, "[envd] creating folder for julia packages") == [
        "[envd] unpack julia archive under /opt/julia"]


def check_cuda(env, build, views):
    assert names(views)[0] == "docker-image://docker.io/nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
    assert labels(build)["ai.tensorchord.envd.gpu.cuda"] == "11.8.0"


def check_vscode_extensions(env, build, views):
    (copy,) = [v for v in views.values() if v.name == "[envd] install vscode plugin ms-python.python-2023.1.0"]
    assert copy.body["file"]["actions"][0]["copy"]["dest"] == "/home/envd/.vscode-server/extensions/ms-python.python-2023.1.0"


def check_codex(env, build, views):
    assert "[envd] install codex" in names(views)


def check_apt_source(env, build, views):
    (view,) = [v for v in views.values() if v.kind == "file"]
    assert view.body["file"]["actions"][0]["mkfile"]["path"] == "/etc/apt/sources.list"


def check_pip_index(env, build, views):
    (pip,) = [v for v in views.values() if v.name == "[envd] pip install numpy"]
    assert "--index-url http://127.0.0.1:8000/simple/ --trusted-host 127.0.0.1" in pip.body["exec"]["meta"]["args"][-1]


def check_cran_mirror(env, build, views):
    (r_op,) = [v for v in views.values() if v.name == "[envd] installing R packages: dplyr"]
    assert "https://cran.example" in r_op.body["exec"]["meta"]["args"][-1]


def check_jupyter(env, build, views):
    assert "[envd] pip install jupyterlab" in names(views) and "8888/tcp" in build.image_config.exposed_ports
    assert "jupyter" in runtime_graph(build)["commands"]


def check_conda_channel(env, build, views):
    (rc,) = [v for v in views.values() if v.name == "[envd] setting conda channel"]
    assert rc.body["file"]["actions"][0]["mkfile"]["path"] == "/opt/conda/envs/envd/.condarc"


def check_gpu(env, build, views):
    assert json.loads(labels(build)["org.envd-jupyter.runtime"]) == {"gpus": 2}


def check_julia_pkg_server(env, build, views):
    (op,) = [v for v in views.values() if v.name.startswith("[envd] installing Julia packages")]
    assert "JULIA_PKG_SERVER=https://julia.example" in op.body["exec"]["meta"]["env"]


def check_rstudio_server(env, build, views):
    assert "8787/tcp" in build.image_config.exposed_ports and "rstudio-server" in runtime_graph(build)["commands"]


def check_entrypoint(env, build, views):
    assert build.image_config.entrypoint == ("python", "-m", "app", "--debug")


def check_repo(env, build, views):
    assert json.loads(labels(build)["ai.tensorchord.envd.repo"]) == {"url": "https://github.com/x/y"}


def check_owner(env, build, views):
    (copy,) = [v for v in views.values() if v.kind == "file"]
    assert copy.body["file"]["actions"][0]["copy"]["owner"]["user"]["byID"] == 1000


def check_shm_size(env, build, views):
    assert json.loads(labels(build)["org.envd-jupyter.runtime"]) == {"shm_size": 1024}


def check_copy(env, build, views):
    (copy,) = [v for v in views.values() if v.kind == "file"]
    assert copy.body["file"]["actions"][0]["copy"]["dest"] == "/app"


def check_http(env, build, views):
    assert "https://example.com/data.tar" in names(views) and layer_keys(build) == {"http[0]"}


def check_command(env, build, views):
    assert runtime_graph(build)["commands"] == {"serve": "python -m http.server"}


def check_expose(env, build, views):
    assert runtime_graph(build)["expose"] == [
        {"EnvdPort": 8080, "HostPort": 80, "ServiceName": "web", "ListeningAddr": "0.0.0.0"}]
    assert {"name": "web", "port": 8080} in json.loads(labels(build)["ai.tensorchord.envd.ports"])


def check_daemon(env, build, views):
    assert runtime_graph(build)["daemon"] == [["python", "-m", "http.server"]]


def check_environ(env, build, views):
    assert runtime_graph(build)["environ"] == {"MODE": "dev"} and build.image_config.path[0] == "/opt/tools"


def check_mount(env, build, views):
    assert names(views)[-1] == "[envd] create dir for runtime.mount /home/envd/data"
    assert json.loads(labels(build)["org.envd-jupyter.runtime"])["mounts"] == [
        {"source": "/srv/data", "destination": "/home/envd/data"}]


def check_init(env, build, views):
    assert runtime_graph(build)["init_script"] == [["echo one", "echo two"]]


def check_data_envd(env, build, views):
    mounts = json.loads(labels(build)["org.envd-jupyter.runtime"])["mounts"]
    assert mounts == [{"source": "envd://imagenet", "destination": "/data"},
                      {"source": "~/.cache/huggingface", "destination": "/hf"}]


CASES = {
    "base": ("", check_base),
    "shell": ('shell("zsh")\n', check_shell),
    "run": ('run(["echo hi"])\n', check_run),
    "git_config": ('base(image="ubuntu:22.04", dev=True)\ngit_config(name="me", email="me@x", editor="vim")\n',
                   check_git_config),
    "include": ('lib = include(git="lib")\nlib.tools()\n', check_include),
    "install.python": ('install.python(version="3.10")\n', check_python),
    "install.conda": ('install.conda(use_mamba=True)\n', check_conda),
    "install.uv": ('install.uv(python_version="3.12")\n', check_uv),
    "install.pixi": ('install.pixi(pypi_index="https://pypi.example/simple")\n', check_pixi),
    "install.r_lang": ('install.apt_packages(name=["gpg"])\ninstall.r_lang()\n', check_r_lang),
    "install.julia": ('install.julia()\n', check_julia),
    "install.rust": ('install.rust(version="1.80.0")\n', check_rust),
    "install.go": ('install.go()\n', check_go),
    "install.nodejs": ('install.nodejs(version="20.11.1")\n', check_nodejs),
    "install.apt_packages": ('install.apt_packages(name=["git", "curl"])\n', check_apt_packages),
    "install.python_packages": ('install.python_packages(name=["numpy"])\n', check_python_packages),
    "install.conda_packages": ('install.conda(use_mamba=True)\ninstall.conda_packages(name=["numpy"])\n',
                               check_conda_packages),
    "install.r_packages": ('install.r_lang()\ninstall.r_packages(name=["dplyr"])\n', check_r_packages),
    "install.julia_packages": ('install.julia()\ninstall.julia_packages(name=["Example"])\n',
                               check_julia_packages),
    "install.cuda": ('install.cuda(version="11.8.0")\n', check_cuda),
    "install.vscode_extensions": ('install.vscode_extensions(name=["ms-python.python-2023.1.0"])\n',
                                  check_vscode_extensions),
    "install.codex": ('install.codex()\n', check_codex),
    "config.apt_source": ('config.apt_source(source="deb http://mirror/ubuntu jammy main")\n', check_apt_source),
    "config.pip_index": ('config.pip_index(url="http://127.0.0.1:8000/simple/", trust=True)\n'
                         'install.python_packages(name=["numpy"])\n', check_pip_index),
    "config.cran_mirror": ('config.cran_mirror(url="https://cran.example")\ninstall.r_lang()\n'
                           'install.r_packages(name=["dplyr"])\n', check_cran_mirror),
    "config.jupyter": ('config.jupyter(token="t")\n', check_jupyter),
    "config.conda_channel": ('install.conda()\nconfig.conda_channel(channel="channels:\\n  - conda-forge\\n")\n',
                             check_conda_channel),
    "config.gpu": ('config.gpu(count=2)\n', check_gpu),
    "config.julia_pkg_server": ('config.julia_pkg_server(url="https://julia.example")\ninstall.julia()\n'
                                'install.julia_packages(name=["Example"])\n', check_julia_pkg_server),
    "config.rstudio_server": ('config.rstudio_server()\n', check_rstudio_server),
    "config.entrypoint": ('config.entrypoint(args=["python", "-m"])\nconfig.entrypoint(args=["app", "--debug"])\n',
                          check_entrypoint),
    "config.repo": ('config.repo(url="https://github.com/x/y")\n', check_repo),
    "config.owner": ('config.owner(uid=1000, gid=1000)\nio.copy(source="src", target="/app")\n', check_owner),
    "config.shm_size": ('config.shm_size(size=1024)\n', check_shm_size),
    "io.copy": ('io.copy(source="src", target="/app")\n', check_copy),
    "io.http": ('io.http(url="https://example.com/data.tar")\n', check_http),
    "runtime.command": ('runtime.command(commands={"serve": "python -m http.server"})\n', check_command),
    "runtime.expose": ('runtime.expose(envd_port=8080, host_port=80, service="web", listen_addr="0.0.0.0")\n',
                       check_expose),
    "runtime.daemon": ('runtime.daemon(commands=[["python", "-m", "http.server"]])\n', check_daemon),
    "runtime.environ": ('runtime.environ(env={"MODE": "dev"}, extra_path=["/opt/tools"])\n', check_environ),
    "runtime.mount": ('runtime.mount(host_path="/srv/data", envd_path="~/data")\n', check_mount),
    "runtime.init": ('runtime.init(commands=["echo one", "echo two"])\n', check_init),
    "data.envd": ('runtime.mount(host_path=data.envd(name="imagenet"), envd_path="/data")\n'
                  'runtime.mount(host_path=data.path.huggingface, envd_path="/hf")\n', check_data_envd),
}


@pytest.fixture(autouse=True)
def _library(tmp_path, monkeypatch):
    """The include case's local library (cells resolve include paths from the working directory)."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tools.envd").write_text('def tools():\n    install.apt_packages(name=["git"])\n')
    monkeypatch.chdir(tmp_path)


def test_every_rule_has_a_case():
    assert set(CASES) == ENVD_V1_RULES
    assert set(EnvdFunctions().table()) | {"include"} == ENVD_V1_RULES


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_graph(rule):
    body, check = CASES[rule]
    env, build, views = compiled(body)
    check(env, build, views)
    if build.layers:  # the parallel form: every layer a merge input, the base first
        (merge,) = [v for v in views.values() if v.kind == "merge"]
        assert len(merge.inputs) == len(build.layers) + 1


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_compiles_sequentially_for_daemons_without_merge(rule):
    _, sequential, views = compiled(CASES[rule][0], parallel=False)
    assert not [v for v in views.values() if v.kind in ("merge", "diff")]
    parallel = compiled(CASES[rule][0])[1]
    without_order = {k: v for k, v in labels(parallel).items() if k != "org.envd-jupyter.layers"}
    assert labels(sequential) == without_order  # the same image config, only the layer order label differs
    assert (sequential.image_config.env, sequential.image_config.path) == (parallel.image_config.env,
                                                                            parallel.image_config.path)


@pytest.mark.parametrize("body, expected", [
    ('install.conda_packages(name=["numpy"])\n', "cannot install conda packages when conda is not installed"),
    ('install.conda()\ninstall.conda_packages(name=["a"], env_file="env.yml")\n',
     "env_file and name/channel are mutually exclusive"),
    ('config.conda_channel(channel="x")\n', "cannot config conda when conda is not installed"),
    ('install.r_packages(name=[])\n', "install.r_packages: Can not install empty R package"),
    ('install.julia_packages(name=["A"])\n', "install.julia_packages: Julia is not installed (call install.julia())"),
    ('install.r_packages(name=["A"])\n', "install.r_packages: R is not installed (call install.r_lang())"),
    ('install.python(version="2.7")\n', "install.python: envd doesn't support Python 2.7"),
    ('config.owner(uid=-1, gid=0)\n', "config.owner: get a wrong uid or gid"),
    ('runtime.expose(envd_port=80, listen_addr="localhost")\n', "listen_addr must be a valid IP address"),
    ('io.http(url="https://x/y", checksum="abc")\n', "io.http: invalid checksum 'abc'"),
    ('install.vscode_extensions(name=["python"])\n', "'python': invalid publisher"),
    ('runtime.daemon(commands=["python -m http.server"])\n', "runtime.daemon: invalid daemon commands"),
    ('install.cuda(version="11.8.0")\nconfig.gpu(count="2")\n', "config.gpu: for parameter count: got string, want int"),
    ('install.conda(use_mamba="yes")\n', "install.conda: for parameter use_mamba: got string, want bool"),
])
def test_rules_refuse_what_envd_refuses(body, expected):
    with pytest.raises(EnvdArgumentError) as info:
        compiled(body)
    assert expected in str(info.value) and str(info.value).startswith("build.envd:")
