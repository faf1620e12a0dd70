"""cog.yaml → envd recording: one group per role, lines taken from the YAML."""

import json

import pytest

from envd_jupyter.lang import CogConfigError
from envd_jupyter.lang._cog import SOURCE_DIR, from_cog_yaml

COG = """build:
  python_version: "3.11"
  system_packages:
    - "libgl1"
    - "ffmpeg"
  python_requirements: requirements.txt
  python_packages:
    - "torch==2.1"
  run:
    - "echo hello"
    - command: "echo world"
predict: "predict.py:Predictor"
"""


def test_cog_yaml_maps_each_role_to_one_group(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==1.26\n")
    (tmp_path / "cog.yaml").write_text(COG)
    env = from_cog_yaml(tmp_path / "cog.yaml", base_image="python-base")
    assert env.base_image == "python-base" and env.python_version == "3.11" and env.python_at.line == 2
    roles = [(g.role, g.items, g.option("requirements"), g.at.line) for g in env.groups]
    assert roles == [("apt", ("libgl1", "ffmpeg"), None, 3), ("pip", (), "numpy==1.26\n", 6),
                     ("pip", ("torch==2.1",), "", 7)]
    assert [(s.kind, s.commands, s.at.line) for s in env.user_steps] == [
        ("run", ("echo hello",), 10), ("run", ("echo world",), 11), ("copy", (), 12)]
    assert env.user_steps[-1].target == SOURCE_DIR and env.config.workdir == SOURCE_DIR
    assert json.loads(dict(env.config.labels)["run.cog.config"])["predict"] == "predict.py:Predictor"


def test_default_base_follows_python_version(tmp_path):
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.10"\n')
    assert from_cog_yaml(tmp_path / "cog.yaml").base_image == "python:3.10"


@pytest.mark.parametrize("text, expected", [
    ("build:\n  gpu: true\n", "cog.yaml:2: build.gpu: no CUDA base image"),
    ("build:\n  python_version: '3.11'\n  weird: 1\n", "cog.yaml:3: build.weird: not understood"),
    ("build:\n  system_packages: libgl1\n", "cog.yaml:2: build.system_packages: must be a list"),
    ("build: [\n", "cog.yaml:2: invalid YAML"),
    ("- python_version: '3.11'\n", "cog.yaml:1: must be a mapping with a build: key, got list"),
    ("build:\n  run: pip install torch\n", "cog.yaml:2: build.run: must be a list of commands"),
    ("build:\n  python_version: [3]\n", "cog.yaml:2: build.python_version: must be a version"),
])
def test_cog_errors_point_into_cog_yaml(tmp_path, text, expected):
    (tmp_path / "cog.yaml").write_text(text)
    with pytest.raises(CogConfigError) as info:
        from_cog_yaml(tmp_path / "cog.yaml")
    assert f"{tmp_path}/{expected}" in str(info.value)


def test_unreadable_cog_yaml_is_a_cog_config_error(tmp_path):
    with pytest.raises(CogConfigError) as info:
        from_cog_yaml(tmp_path / "cog.yaml")
    assert str(info.value) == f"{tmp_path}/cog.yaml: cannot read cog.yaml: No such file or directory"
    (tmp_path / "cog.yaml").write_bytes(b"build:\n  run: ['caf\xe9']\n")
    with pytest.raises(CogConfigError, match="cannot read cog.yaml: invalid continuation byte"):
        from_cog_yaml(tmp_path / "cog.yaml")
