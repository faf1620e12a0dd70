"""Errors as envd gives them: build() required, names suggested from envd's own list, every error of a
file's names at once, envd's argument types, image references checked at the call."""

import subprocess

import pytest

from envd_jupyter.lang import (
    CogConfigError,
    EnvdArgumentError,
    EnvdError,
    EnvdLoadError,
    UnknownFunctionError,
    Workspace,
    exec_cell,
    from_cog_yaml,
    load_file,
)


def write(tmp_path, text, name="build.envd"):
    (tmp_path / name).write_text(text)
    return tmp_path / name


def test_starlarks_did_you_mean_suffix_does_not_hide_the_envd_message(tmp_path):
    """Starlark guesses from the names seen so far (runtime_expose); the error names envd's closest rule."""
    path = write(tmp_path, 'def build():\n    runtime.expose(envd_port=8000)\n    runtime.deamon(commands=[["x"]])\n')
    with pytest.raises(UnknownFunctionError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:3: unknown envd v1 function runtime.deamon (did you mean runtime.daemon?)"


def test_the_issues_examples_now_load(tmp_path):
    env = load_file(write(tmp_path, 'def build():\n    runtime.expose(envd_port=8000)\n'
                                    '    runtime.daemon(commands=[["python", "-m", "http.server"]])\n'
                                    '    runtime.mount(host_path=data.envd(name="imagenet"), envd_path="/data")\n'))
    assert env.runtime.daemon == (("python", "-m", "http.server"),)
    assert env.runtime.mounts == (("envd://imagenet", "/data"),)


def test_build_is_required_like_envd_and_from_picks_another_function(tmp_path):
    path = write(tmp_path, 'def gpu():\n    install.apt_packages(name=["git"])\n\n'
                           'def Build():\n    install.apt_packages(name=["vim"])\n')
    with pytest.raises(EnvdArgumentError) as info:
        load_file(path)
    assert str(info.value) == (f"{path}: envd file has no build function: envd runs build() "
                               f"(did you mean Build, defined at {path}:4?)")
    assert [g.items for g in load_file(path, function="gpu").groups] == [("git",)]


def test_a_cell_that_records_nothing_is_an_error_not_a_base_image():
    with pytest.raises(EnvdArgumentError, match=r"^cell\[4\]: the cell records nothing"):
        Workspace().run_cell(4, "def helper():\n    pass\n", name="x", language="starlark")
    with pytest.raises(EnvdArgumentError, match=r"^cell: the cell records nothing"):
        exec_cell('image("busybox").run("x")\n', name="cell")  # a chain state must be returned by build()


@pytest.mark.parametrize("body, expected", [
    ('install.apt_packages(name="git")\n', "install.apt_packages: for parameter name: got string, want list"),
    ('install.python_packages(name=["a", 1])\n', "install.python_packages: for parameter name: item 1 is int, want string"),
    ('run(commands="make")\n', "run: for parameter commands: got string, want list"),
    ('run(["make"], mount_host=1)\n', "run: for parameter mount_host: got int, want bool"),
    ('config.pip_index(url="http://x", trust="yes")\n', "config.pip_index: for parameter trust: got string, want bool"),
    ('runtime.environ(env={"A": 1})\n', "runtime.environ: for parameter env: want dict of string to string, got string 'A' to int"),
    ('base(image="python:3.12 ")\n', "base: for parameter image: invalid image reference 'python:3.12 '"),
    ('install.python(version=3.11)\n', "install.python: for parameter version: got float, want string"),
])
def test_wrong_argument_types_are_refused_as_envd_refuses_them(body, expected):
    with pytest.raises(EnvdArgumentError) as info:
        exec_cell(body, name="cell[1]")
    assert str(info.value) == f"cell[1]:1: {expected}"


def test_a_bad_image_in_a_chain_or_a_cog_yaml_names_its_line(tmp_path):
    with pytest.raises(EnvdArgumentError, match=r"^c:2: image: for parameter ref: invalid image reference"):
        exec_cell('def build():\n    return image("Python:3")\n', name="c")
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.12 "\n')
    assert from_cog_yaml(tmp_path / "cog.yaml", sdk=False).base_image == "python:3.12-slim"  # cog trims it
    with pytest.raises(CogConfigError) as info:
        from_cog_yaml(tmp_path / "cog.yaml", base_image="bad ref", sdk=False)
    assert str(info.value) == f"{tmp_path}/cog.yaml:1: base: for parameter image: invalid image reference 'bad ref'"


def test_what_the_binding_itself_refuses_is_one_error_and_the_worker_lives_on():
    with pytest.raises(EnvdError, match=r"^c: UnicodeEncodeError: 'utf-8' codec can't encode"):
        exec_cell('x = "\ud800"\n', name="c")
    assert [g.items for g in exec_cell('install.apt_packages(name=["a"])\n').groups] == [("a",)]


def test_include_clones_a_git_repository_and_names_an_unreachable_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where clones are kept
    repo = tmp_path / "envdlib"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "tools.envd").write_text('def tools():\n    install.apt_packages(name=["git"])\n')
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lib"]):
        subprocess.run(["git", "-C", str(repo), *command], check=True, capture_output=True, timeout=60)
    path = write(tmp_path, f'lib = include(git="file://{repo}")\n\ndef build():\n    lib.tools()\n')
    (group,) = load_file(path).groups
    assert group.items == ("git",) and group.at.file.endswith("lib/tools.envd") and "/cache/envd-jupyter/" in group.at.file
    unreachable = write(tmp_path, 'lib = include(git="file:///nonexistent/repo")\n\ndef build():\n    lib.tools()\n')
    with pytest.raises(EnvdLoadError) as info:
        load_file(unreachable)
    assert str(info.value).startswith(f"{unreachable}:1: include: cannot fetch file:///nonexistent/repo: ")
    with pytest.raises(EnvdLoadError, match=r":2: include: assign it at the top level"):
        exec_cell('def build():\n    lib = include(git="x")\n', name="c")
