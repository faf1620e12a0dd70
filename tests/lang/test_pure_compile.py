"""Compiling never mutates its input: running a cell twice on one Environment records its calls once."""

import copy

from envd_jupyter.lang import (
    EnvdFunctions,
    Environment,
    compile_environment,
    compile_for_caps,
    diff,
    exec_cell,
    from_cog_yaml,
    from_environment,
    image,
    load_file,
    merge,
)

CELL = 'install.apt_packages(name=["git"])\nrun(["echo hi"])\n'


def recorded(tmp_path) -> Environment:
    env = Environment(name="demo", context=tmp_path)
    functions = EnvdFunctions(env)
    functions.base(image="python:3.11")
    functions.install.python_packages(name=["numpy"])
    functions.runtime.command(commands={"serve": "python -m http.server"})
    functions.config.pip_index(url="http://127.0.0.1:1/simple")
    return env


def test_running_a_cell_twice_on_one_env_records_its_group_once(tmp_path):
    env = recorded(tmp_path)
    before = copy.deepcopy(env)
    first, second = exec_cell(CELL, env=env, name="cell[1]"), exec_cell(CELL, env=env, name="cell[1]")
    assert env == before and first is not env and second is not env
    assert [g.role for g in second.groups] == ["pip", "apt"] and len(second.user_steps) == 1
    assert first == second


def test_a_cell_that_changes_config_leaves_the_input_config_and_commands_alone(tmp_path):
    env = recorded(tmp_path)
    before = copy.deepcopy(env)
    out = exec_cell('runtime.environ(env={"A": "1"})\nruntime.command(commands={"x": "y"})\n'
                    'config.pip_index(url="http://127.0.0.1:2/simple")\n', env=env)
    assert env == before
    assert dict(out.config.env) == {"A": "1"} and set(dict(out.runtime.commands)) == {"serve", "x"}
    assert out.pip_index["url"].endswith(":2/simple")


def test_load_file_and_cog_yaml_record_into_a_copy(tmp_path):
    (tmp_path / "build.envd").write_text('def build():\n    install.apt_packages(name=["curl"])\n')
    (tmp_path / "cog.yaml").write_text("build:\n  python_version: '3.11'\n  system_packages: [git]\n")
    env = recorded(tmp_path)
    before = copy.deepcopy(env)
    from_file = load_file(tmp_path / "build.envd", env=env)
    from_cog = from_cog_yaml(tmp_path / "cog.yaml", env=env)
    assert env == before
    assert [g.items for g in from_file.groups_of("apt")] == [("curl",)]
    assert [g.items for g in from_cog.groups_of("apt")] == [("git",)] and from_cog.config.workdir == "/src"


def test_compiling_leaves_the_environment_as_it_was(tmp_path):
    env = exec_cell(CELL, env=recorded(tmp_path))
    before = copy.deepcopy(env)
    parallel = compile_environment(env, network="host", previous=("x",), weights={"pip[0]": 3.0})
    sequential = compile_for_caps(env, set())
    assert env == before
    assert parallel.marshal(local_unique_id="u").digests != sequential.marshal(local_unique_id="u").digests


def test_chain_methods_merge_and_diff_leave_their_inputs_alone(tmp_path):
    env = recorded(tmp_path)
    before = copy.deepcopy(env)
    root = from_environment(env)
    grown = root.apt_packages(["git"]).run("make")
    merged = merge([root, image("busybox").python_packages(["black"])]).run("true")
    diff(root, grown).marshal()
    assert env == before and root.environment == before
    assert [g.role for g in grown.environment.groups] == ["pip", "apt"] and merged.environment.user_steps
