"""build.envd through go.starlark.net: what gets recorded, with which line, and one-line errors."""

import pytest

from envd_jupyter import llb
from envd_jupyter.lang import (
    EnvdArgumentError,
    EnvdLoadError,
    EnvdSyntaxError,
    Location,
    UnknownFunctionError,
    exec_cell,
    load_file,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


BUILD = '''load("lib.envd", "add_ml", ml="add_ml")

def build():
    base(image="python:3.11")
    install.apt_packages(name=[
        "git", "curl"])
    ml()
    install.python_packages(name=["pandas"])
    run(["echo one", "echo two"])
'''
LIB = '''def add_ml():
    install.python_packages(name=["numpy"])
'''


def test_records_calls_with_the_line_the_user_wrote(tmp_path):
    write(tmp_path, "lib.envd", LIB)
    env = load_file(write(tmp_path, "build.envd", BUILD))
    assert env.base_image == "python:3.11"
    assert [(g.role, g.items, g.at.line, g.at.file.rsplit("/", 1)[-1]) for g in env.groups] == [
        ("apt", ("git", "curl"), 5, "build.envd"),
        ("pip", ("numpy",), 2, "lib.envd"),
        ("pip", ("pandas",), 8, "build.envd"),
    ]
    (step,) = env.user_steps
    assert step.commands == ("echo one", "echo two") and step.at.line == 9


def test_cell_body_records_top_level_calls():
    env = exec_cell('base(image="busybox")\nruntime.environ(env={"A": "1"}, extra_path=["/x/bin"])\n'
                    'runtime.expose(envd_port=8080)\n', name="cell[3]")
    assert dict(env.config.env) == {"A": "1"}
    assert env.config.path[0] == "/x/bin" and env.config.exposed_ports == ("8080/tcp",)
    assert env.base_at.file == "cell[3]" and env.base_at.line == 1


def test_lang_location_is_the_llb_source_location_and_errors_name_it():
    assert Location is llb.SourceLocation
    with pytest.raises(EnvdArgumentError) as info:
        exec_cell('base(image="busybox")\ninstall.apt_packages(name=3)\n', name="cell[2]")
    assert info.value.at == llb.SourceLocation("cell[2]", 2)
    assert str(info.value) == "cell[2]:2: install.apt_packages: for parameter name: got int, want list"
    assert str(EnvdLoadError("no such file", Location("build.envd"))) == "build.envd: no such file"


@pytest.mark.parametrize("body, kind, expected", [
    ('def build():\n    base(image="x"\n', EnvdSyntaxError, "build.envd:3: got outdent, want ','"),
    ('def build():\n    base(image="x")\n    install.foo(name=["a"])\n', UnknownFunctionError,
     "build.envd:3: unknown envd v1 function install.foo (known: install.apt_packages"),
    ('def build():\n    frobnicate(1)\n', UnknownFunctionError, "build.envd:2: unknown envd v1 function frobnicate"),
    ('install.system_packages(name=["a"])\n', UnknownFunctionError,
     "build.envd:1: install.system_packages is an envd v0 function; envd v1 uses install.apt_packages"),
    ('io.mount(src="/data")\n', UnknownFunctionError, "build.envd:1: io.mount is an envd v0 function; envd v1 uses runtime.mount"),
    ('def build():\n    install.apt_packages(name=3)\n', EnvdArgumentError,
     "build.envd:2: install.apt_packages: for parameter name: got int, want list"),
    ('\ninstall.apt_packages(names=["a"])\n', EnvdArgumentError,
     "build.envd:2: install.apt_packages: got an unexpected keyword argument 'names'"),
    ('base(os="ubuntu20.04", language="python3")\n', EnvdArgumentError,
     "build.envd:1: base: unexpected keyword argument language (base(os=..., language=...) is envd v0"),
    ('x = [1][3]\n', Exception, "build.envd:1: list index 3 out of range"),
    ('load("missing.envd", "f")\n', EnvdLoadError, "build.envd:1: cannot load"),
    # wrong types are caught at the call (not later in compile, which has no file:line)
    ('\nbase(image=3)\n', EnvdArgumentError, "build.envd:2: base: for parameter image: got int, want string"),
    ('io.copy(source=1, target="/x")\n', EnvdArgumentError, "build.envd:1: io.copy: for parameter source: got int"),
    ('install.python_packages(requirements=3)\n', EnvdArgumentError,
     "build.envd:1: install.python_packages: for parameter requirements: got int, want string"),
    ('io.http(url=3)\n', EnvdArgumentError, "build.envd:1: io.http: for parameter url: got int, want string"),
    ('config.apt_source(source=3)\n', EnvdArgumentError, "build.envd:1: config.apt_source: for parameter source"),
    ('config.jupyter(port="x")\n', EnvdArgumentError, "build.envd:1: config.jupyter: port must be a port number"),
    ('runtime.expose(envd_port=True)\n', EnvdArgumentError, "build.envd:1: runtime.expose: envd_port must be a port"),
    ('install.conda_packages(name=["a"], env_file=3)\n', EnvdArgumentError,
     "build.envd:1: install.conda_packages: for parameter env_file: got int"),
])
def test_errors_are_one_line_with_file_and_line(tmp_path, body, kind, expected):
    with pytest.raises(kind) as info:
        load_file(write(tmp_path, "build.envd", body))
    text = str(info.value)
    assert "\n" not in text
    assert f"{tmp_path}/{expected}" in text


def test_too_many_arguments_do_not_mention_the_hidden_location_argument(tmp_path):
    with pytest.raises(EnvdArgumentError) as info:
        load_file(write(tmp_path, "build.envd", 'base("a", True, 3)\n'))
    assert f"{tmp_path}/build.envd:1: base: takes" in str(info.value)
    assert "keyword-only" not in str(info.value)


def test_unreadable_files_give_one_line_load_errors(tmp_path):
    bad = tmp_path / "build.envd"
    bad.write_bytes(b'base(image="a")\n# caf\xe9\n')
    with pytest.raises(EnvdLoadError) as info:
        load_file(bad)
    assert str(info.value) == f"{bad}:2: not UTF-8 text: invalid continuation byte at byte 21"
    with pytest.raises(EnvdLoadError, match=r"cannot load .*: a directory$"):
        load_file(tmp_path)


def test_load_cycle_is_reported(tmp_path):
    write(tmp_path, "a.envd", 'load("b.envd", "g")\ndef f():\n    pass\n')
    write(tmp_path, "b.envd", 'load("a.envd", "f")\ndef g():\n    pass\n')
    with pytest.raises(EnvdLoadError, match="load cycle: a.envd -> b.envd -> a.envd"):
        load_file(tmp_path / "a.envd")


def test_load_of_missing_symbol(tmp_path):
    write(tmp_path, "lib.envd", LIB)
    with pytest.raises(EnvdLoadError, match=r"build.envd:1: load: lib.envd has no symbol nope"):
        load_file(write(tmp_path, "build.envd", 'load("lib.envd", "nope")\n'))


def test_dotted_names_inside_strings_and_comments_are_left_alone(tmp_path):
    env = load_file(write(tmp_path, "build.envd", '# install.apt_packages(name=["no"])\n'
                          'def build():\n    run(["echo install.apt_packages(x)"])\n'))
    assert env.groups == [] and env.user_steps[0].commands == ("echo install.apt_packages(x)",)
