"""The chaining form written in Starlark: the same graph as from Python, lines per method, one-line errors."""

import pytest

from envd_jupyter import llb
from envd_jupyter.lang import (
    EnvdArgumentError,
    EnvdFunctions,
    Environment,
    UnknownFunctionError,
    compile_environment,
    diff,
    exec_cell,
    image,
    load_file,
    merge,
)
from envd_jupyter.lang._chain import CHAIN_METHODS, EnvdState, rooted_at
from envd_jupyter.lang._starlark_chain import BUILTIN_METHODS

UNIQUE = "starlark-chain-test"

CHAINED = '''def build():
    root = image("python:3.11")
    tools = (root.apt_packages(["git", "curl"])
             .python_packages(name=["numpy"]))
    served = root.run("echo served > /srv").expose(envd_port=8080)
    return merge([tools, served]).run(["echo x"]).environ(env={"A": "1"})
'''


def python_chain():
    root = image("python:3.11")
    tools = root.apt_packages(["git", "curl"]).python_packages(name=["numpy"])
    served = root.run("echo served > /srv").expose(envd_port=8080)
    return merge([tools, served]).run(["echo x"]).environ(env={"A": "1"})


def digests(env_or_state):
    build = env_or_state.build() if isinstance(env_or_state, EnvdState) else compile_environment(env_or_state)
    return build.marshal(local_unique_id=UNIQUE).digests, build.image_config


def test_starlark_chain_gives_the_python_chains_definition(tmp_path):
    path = tmp_path / "build.envd"
    path.write_text(CHAINED)
    env = load_file(path)
    assert digests(env) == digests(python_chain())
    (step,) = env.user_steps
    assert step.at.file == str(path) and step.at.line == 6


def test_each_method_records_the_line_it_is_written_on(tmp_path):
    env = exec_cell('def build():\n    return (image("python:3.11")\n        .apt_packages(["git"])\n'
                    '        .python_packages(["numpy"])\n        .run("make"))\n', name="cell[1]")
    assert [(g.role, g.at.line) for g in env.groups] == [("apt", 3), ("pip", 4)]
    assert env.base_at.line == 2 and env.user_steps[0].at.line == 5 and env.user_steps[0].at.file == "cell[1]"


def test_diff_and_method_merge_match_python(tmp_path):
    source = ('def build():\n    a = image("python:3.11").apt_packages(["git"])\n'
              '    delta = diff(image("python:3.11"), a)\n'
              '    return image("python:3.12").merge(delta).run("git --version")\n')
    a = image("python:3.11").apt_packages(["git"])
    expected = image("python:3.12").merge(diff(image("python:3.11"), a)).run("git --version")
    assert digests(exec_cell(source)) == digests(expected)


def test_loaded_module_can_continue_a_chain(tmp_path):
    (tmp_path / "lib.envd").write_text('def with_tools(state):\n    return state.apt_packages(["git"])\n')
    (tmp_path / "build.envd").write_text('load("lib.envd", "with_tools")\n\n'
                                         'def build():\n    return with_tools(image("python:3.11")).run("x")\n')
    env = load_file(tmp_path / "build.envd")
    (group,) = env.groups
    assert group.at.file == str(tmp_path / "lib.envd") and group.at.line == 2
    assert digests(env) == digests(image("python:3.11").apt_packages(["git"]).run("x"))


def test_starlark_methods_of_strings_lists_and_dicts_still_work():
    env = exec_cell('parts = "git,curl".split(",")\nparts.append("vim")\nopts = {"a": 1}\n'
                    'def build():\n    return image(opts.get("img", "python:3.11")).apt_packages(parts)\n')
    assert env.groups[0].items == ("git", "curl", "vim")


@pytest.mark.parametrize("body, kind, expected", [
    ('def build():\n    return image("x").apt_pakages(["a"])\n', UnknownFunctionError,
     "build.envd:2: envd state has no method .apt_pakages (did you mean .apt_packages?)"),
    ('s = image("x")\n\nt = s.frobnicate()\n', UnknownFunctionError,
     "build.envd:3: envd state has no method .frobnicate (methods: python, apt_packages"),
    ('x = "abc".run("y")\n', EnvdArgumentError, "build.envd:1: string has no .run field or method"),
    ('x = (image("a")\n    .run(3))\n', EnvdArgumentError,
     "build.envd:2: run: for parameter commands: got int, want list"),
    ('x = image("a").run("a", "b", "c")\n', EnvdArgumentError,
     "build.envd:1: .run: takes from 1 to 2 positional arguments but 3 positional arguments were given"),
    ('x = image("a").run(commandz="a")\n', EnvdArgumentError,
     "build.envd:1: .run: got an unexpected keyword argument 'commandz'"),
    ('x = merge([image("a"), "b"])\n', EnvdArgumentError,
     "build.envd:1: merge: want states from image(...) or merge(...), got str"),
    ('x = image(3)\n', EnvdArgumentError, "build.envd:1: image: for parameter ref: got int, want string"),
    ('\ndef build():\n    return 3\n', EnvdArgumentError,
     "build.envd:2: build() must return a state from image(...) or nothing, got int"),
    ('def build():\n    base(image="x")\n    return image("y")\n', EnvdArgumentError,
     "build.envd:1: build() returned a chained state but also called envd functions"),
])
def test_chain_errors_are_one_line_with_file_and_line(tmp_path, body, kind, expected):
    path = tmp_path / "build.envd"
    path.write_text(body)
    with pytest.raises(kind) as info:
        load_file(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{tmp_path}/{expected}")


def test_chain_methods_never_shadow_starlark_builtin_methods():
    assert not set(CHAIN_METHODS) & BUILTIN_METHODS
    assert {"split", "append", "get", "format"} <= BUILTIN_METHODS
    assert all(callable(getattr(EnvdState, name)) for name in CHAIN_METHODS)


def test_start_replaces_base_and_continues_as_the_chain_state_start():
    root = llb.image("busybox").run("echo root")
    recorded = exec_cell('install.apt_packages(name=["git"])\n', name="cell[2]", start=root)
    expected = rooted_at(Environment(), root, None)
    EnvdFunctions(expected).install.apt_packages(name=["git"])
    assert recorded.base_state is root and digests(recorded) == digests(expected)
    assert root.marshal().head[0] in digests(recorded)[0]  # the start itself is the base, untouched
    chained = exec_cell('def build():\n    return start.apt_packages(["git"])\n', name="cell[3]", start=root)
    assert digests(chained) == digests(recorded)
    with pytest.raises(EnvdArgumentError, match=r"^cell\[4\]: start: want an llb.State or a state from image"):
        exec_cell('run(["true"])\n', name="cell[4]", start="busybox")
