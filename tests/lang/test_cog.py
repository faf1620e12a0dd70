"""cog.yaml → envd recording, following cog's schema: one group per role, lines taken from the YAML,
the GPU base image as cog picks it, and every key either mapped or reported."""

import json
import warnings

import pytest

from envd_jupyter.lang import CogConfigError, CogWarning, compile_environment
from envd_jupyter.lang._cog import SOURCE_DIR, from_cog_yaml
from envd_jupyter.lang._opview import op_views

COG = """build:
  python_version: "3.11"
  system_packages:
    - "libgl1"
    - "ffmpeg"
  pre_install:
    - "echo before"
  python_requirements: requirements.txt
  sdk_version: "0.18.0"
  run:
    - "echo hello"
    - command: "echo world"
image: "r8.im/me/model"
predict: "predict.py:Predictor"
train: "train.py:Trainer"
concurrency:
  max: 4
environment:
  - "HF_HOME=/src/.hf"
weights:
  - name: base-model
    target: /src/weights
    source:
      uri: hf://org/model
"""


def cog_env(tmp_path, text, **options):
    (tmp_path / "cog.yaml").write_text(text)
    return from_cog_yaml(tmp_path / "cog.yaml", **options)


def test_every_key_is_mapped_with_its_line(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==1.26\n")
    env = cog_env(tmp_path, COG, base_image="python-base")
    assert env.base_image == "python-base" and env.python_version == "3.11" and env.python_at.line == 2
    assert env.name == "r8.im/me/model"
    assert [(g.role, g.items, g.at.line) for g in env.groups] == [
        ("apt", ("libgl1", "ffmpeg"), 3), ("mount", ("/src/weights",), 21)]  # weights mount at their target
    steps = [(s.kind, s.commands or (s.group.items, s.group.option("requirements")) if s.group else s.commands,
              s.at.line) for s in env.user_steps]
    assert steps == [  # cog's order: pre_install, then the python packages, then run, then the source
        ("run", ("echo before",), 7), ("install", ((), "numpy==1.26\n"), 8), ("install", (("cog==0.18.0",), ""), 9),
        ("run", ("echo hello",), 11), ("run", ("echo world",), 12), ("copy", (), 14)]
    assert env.user_steps[-1].target == SOURCE_DIR and env.config.workdir == SOURCE_DIR
    config = dict(env.config.env)
    assert config["COG_PREDICT_TYPE_STUB"] == "predict.py:Predictor" and config["COG_TRAIN_TYPE_STUB"] == "train.py:Trainer"
    assert config["COG_MAX_CONCURRENCY"] == "4" and config["HF_HOME"] == "/src/.hf"
    assert env.build_env == (("HF_HOME", "/src/.hf"),)  # cog's environment applies to build steps too
    assert env.config.cmd == ("python", "-m", "cog.server.http") and "5000/tcp" in env.config.exposed_ports
    assert env.runtime.mounts == (("hf://org/model", "/src/weights"),)
    labels = dict(env.config.labels)
    assert json.loads(labels["run.cog.config"])["predict"] == "predict.py:Predictor"
    assert json.loads(labels["run.cog.weights"]) == [
        {"name": "base-model", "target": "/src/weights", "sources": ["hf://org/model"]}]


def test_build_steps_see_the_environment(tmp_path):
    env = cog_env(tmp_path, 'build:\n  python_version: "3.11"\n  run: ["echo $HF_HOME"]\n'
                            'environment: ["HF_HOME=/hf"]\n', sdk=False)
    (run,) = [v for v in op_views(compile_environment(env).marshal()).values() if v.name.startswith("[user]")]
    assert "HF_HOME=/hf" in run.body["exec"]["meta"]["env"]


def test_default_base_is_cogs_slim_python(tmp_path):
    env = cog_env(tmp_path, 'build:\n  python_version: "3.12"\n')
    assert env.base_image == "python:3.12-slim"
    assert [g.items for g in env.groups_of("pip")] == [("cog",)]
    assert cog_env(tmp_path, 'build:\n  python_version: "3.12"\n', sdk=False).groups_of("pip") == []


@pytest.mark.parametrize("packages, image, cuda", [
    ("", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", "11.8"),  # cog's default CUDA
    ("  python_packages: ['torch==2.1.0']\n", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04", "12.1"),
    ("  python_packages: ['tensorflow==2.14.0']\n", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04", "11.8"),
    ("  python_packages: ['torch==2.9.1']\n", "nvidia/cuda:13.0.3-cudnn-devel-ubuntu24.04", "13.0"),
    ("  cuda: '12.4'\n", "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", "12.4"),
])
def test_gpu_picks_the_base_image_as_cog_does(tmp_path, packages, image, cuda):
    env = cog_env(tmp_path, f'build:\n  gpu: true\n  python_version: "3.11"\n{packages}', sdk=False)
    assert env.base_image == image and dict(env.config.labels)["run.cog.cuda"] == cuda
    assert env.conda is not None  # python comes from a conda environment: CUDA images have none
    assert dict(env.config.env)["NVIDIA_DRIVER_CAPABILITIES"] == "all"
    names = [v.name for v in op_views(compile_environment(env).marshal()).values()]
    assert names[0] == f"docker-image://docker.io/{image}" and "[envd] create conda environment python=3.11" in names


def test_an_unquoted_float_python_version_is_refused_with_a_hint(tmp_path):
    with pytest.raises(CogConfigError) as info:
        cog_env(tmp_path, "build:\n  python_version: 3.10\n")
    assert str(info.value) == (f'{tmp_path}/cog.yaml:2: build.python_version: 3.10 is a YAML number (read as 3.1): '
                               'quote it, python_version: "3.10"')


def test_duplicate_unknown_and_ineffective_keys_are_warned_with_their_lines(tmp_path):
    text = ('build:\n  python_version: "3.11"\n  sytem_packages: [git]\n  cuda: "12.1"\n'
            '  python_version: "3.12"\nmodle: x\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = cog_env(tmp_path, text, sdk=False)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, CogWarning))
    assert messages == sorted([
        f"{tmp_path}/cog.yaml:5: duplicate key build.python_version (the last one is used; cog refuses duplicates)",
        f"{tmp_path}/cog.yaml:3: build.sytem_packages: not a cog.yaml build key (cog refuses it); ignored",
        f"{tmp_path}/cog.yaml:6: modle: not a cog.yaml key (cog refuses it); ignored",
        f"{tmp_path}/cog.yaml:4: build.cuda has no effect without gpu: true",
    ])
    assert env.python_version == "3.12"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
              for i in range(1, 12)]
    with pytest.raises(CogConfigError, match="YAML aliases expand to more than 10000 nodes"):
        cog_env(tmp_path, "\n".join(lines) + '\nbuild:\n  python_version: "3.11"\n')


@pytest.mark.parametrize("text, expected", [
    ("build:\n  gpu: true\n", "cog.yaml:1: build: python_version is required"),
    ("build:\n  python_version: '3.9'\n", "cog.yaml:2: build.python_version: minimum supported Python version is 3.10"),
    ("build:\n  python_version: '3'\n", "cog.yaml:2: build.python_version: must include major and minor version"),
    ("build:\n  python_version: [3]\n", "cog.yaml:2: build.python_version: must be a version such as \"3.11\", got a YAML list"),
    ("build:\n  python_version: '3.11'\n  system_packages: libgl1\n", "cog.yaml:3: build.system_packages: must be a list"),
    ("build: [\n", "cog.yaml:2: invalid YAML"),
    ("- python_version: '3.11'\n", "cog.yaml:1: must be a mapping with a build: key, got list"),
    ("build:\n  python_version: '3.11'\n  run: pip install torch\n", "cog.yaml:3: build.run: must be a list of commands"),
    ("build:\n  python_version: '3.11'\n  python_packages: [a]\n  python_requirements: r.txt\n",
     "cog.yaml:3: build.python_packages: only one of python_packages or python_requirements"),
    ("build:\n  python_version: '3.11'\n  python_requirements: missing.txt\n",
     "cog.yaml:3: build.python_requirements: file"),
    ("build:\n  python_version: '3.11'\n  gpu: true\n  cuda: '10.2'\n",
     "cog.yaml:3: build.gpu: minimum supported CUDA version is 11"),
    ("build:\n  python_version: '3.11'\n  gpu: true\n  cuda: '11.8'\n  cudnn: '9'\n",
     "cog.yaml:3: build.gpu: CUDA 11.8 is not compatible with cuDNN 9 (compatible: 8)"),
    ("build:\n  python_version: '3.11'\n  gpu: true\n  python_packages: [torch]\n",
     "cog.yaml:3: build.gpu: torch version must be specified when using CUDA"),
    ("build:\n  python_version: '3.11'\n  run:\n    - command: x\n      mounts: [{type: secret, id: a, target: /a}]\n",
     "cog.yaml:4: build.run.0: mounts (build secrets) are not mapped"),
    ("build:\n  python_version: '3.11'\npredict: predict.py\n", "cog.yaml:3: predict: must be in the form 'predict.py:Predictor'"),
    ("build:\n  python_version: '3.11'\nrun: a.py:A\npredict: b.py:B\n", "cog.yaml:3: run: only one of run or predict"),
    ("build:\n  python_version: '3.10'\nconcurrency:\n  max: 2\n", "cog.yaml:3: concurrency: concurrency requires Python 3.11"),
    ("build:\n  python_version: '3.11'\nconcurrency:\n  max: 0\n", "cog.yaml:4: concurrency.max: must be at least 1"),
    ("build:\n  python_version: '3.11'\nenvironment: [PATH=/x]\n", "cog.yaml:3: environment.0: PATH is reserved"),
    ("build:\n  python_version: '3.11'\nenvironment: [A=1, A=2]\n", "cog.yaml:3: environment.1: A is already defined"),
    ("build:\n  python_version: '3.11'\nenvironment: [nope]\n", "cog.yaml:3: environment.0: 'nope' is not in the NAME=value"),
    ("build:\n  python_version: '3.11'\nimage: a\nmodel: b\n", "cog.yaml:4: model: 'model' and 'image' cannot both be set"),
    ("build:\n  python_version: '3.11'\nweights:\n  - {name: w, target: rel, source: {uri: x}}\n",
     "cog.yaml:4: weights.0.target: target must be an absolute path"),
    ("build:\n  python_version: '3.11'\n  system_packages: ['bad name!']\n  gpu: 1\n", "cog.yaml:4: build.gpu: must be true or false"),
])
def test_cog_errors_point_into_cog_yaml(tmp_path, text, expected):
    with pytest.raises(CogConfigError) as info:
        cog_env(tmp_path, text)
    assert f"{tmp_path}/{expected}" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_cog_yaml_is_a_cog_config_error(tmp_path):
    with pytest.raises(CogConfigError) as info:
        from_cog_yaml(tmp_path / "cog.yaml")
    assert str(info.value) == f"{tmp_path}/cog.yaml: cannot read cog.yaml: No such file or directory"
    (tmp_path / "cog.yaml").write_bytes(b"build:\n  run: ['caf\xe9']\n")
    with pytest.raises(CogConfigError, match="cannot read cog.yaml: invalid continuation byte"):
        from_cog_yaml(tmp_path / "cog.yaml")
