"""Build files stay in their context and their YAML is bounded (issue 17 items 5 and 6), offline.

The host files a build.envd or cog.yaml names (requirements, io.copy sources, local wheels,
load() modules) must resolve inside the build context or the file's own directory, symlinks
followed, or fail at the user's file:line; nothing outside is read into the Definition.
"""

from __future__ import annotations

import pytest

from envd_jupyter.lang import CogConfigError, EnvdArgumentError, EnvdError, EnvdLoadError, load_file
from envd_jupyter.lang._cog import from_cog_yaml
from envd_jupyter.lang._untrusted import MAX_YAML_NODES

SECRET = "aws_secret_access_key = do-not-ship-9f3e"


@pytest.fixture
def layout(tmp_path):
    """A project dir with a build file, and a credentials file beside it (outside the context)."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(SECRET)
    project = tmp_path / "project"
    project.mkdir()
    return project


def _build(project, body: str):
    """A build.envd whose calls run at load time (lines as written), with the build() envd requires."""
    (project / "build.envd").write_text(body + "\ndef build():\n    pass\n")
    return load_file(project / "build.envd")


@pytest.mark.parametrize("body, error, line, what", [
    ('install.python_packages(requirements="../.aws/credentials")\n', EnvdArgumentError, 1, "requirements file"),
    ('\nio.copy("../.aws/credentials", "/root/.aws/credentials")\n', EnvdArgumentError, 2, "io.copy: source"),
    ('io.copy("/etc/passwd", "/x")\n', EnvdArgumentError, 1, "io.copy: source"),
    ('install.python_packages(local_wheels=["../w.whl"])\n', EnvdArgumentError, 1, "local wheel"),
    ('load("../.aws/credentials", "x")\n', EnvdLoadError, 1, "load:"),
])
def test_a_path_outside_the_context_fails_at_its_line(layout, body, error, line, what):
    with pytest.raises(error) as refused:
        _build(layout, body)
    message = str(refused.value)
    assert message.startswith(f"{layout / 'build.envd'}:{line}: ") and what in message
    assert "outside the build context" in message and SECRET not in message


def test_a_symlink_out_of_the_context_is_followed_and_refused(layout):
    (layout / "requirements.txt").symlink_to(layout.parent / ".aws" / "credentials")
    (layout / "lib.envd").symlink_to(layout.parent / ".aws" / "credentials")
    with pytest.raises(EnvdArgumentError, match="outside the build context"):
        _build(layout, 'install.python_packages(requirements="requirements.txt")\n')
    with pytest.raises(EnvdLoadError, match="outside the build context"):
        _build(layout, 'load("lib.envd", "x")\n')


def test_paths_inside_the_context_still_work(layout):
    (layout / "sub").mkdir()
    (layout / "sub" / "requirements.txt").write_text("numpy==1.26\n")
    (layout / "sub" / "lib.envd").write_text('def packages():\n    return ["rich"]\n')
    env = _build(layout, 'load("sub/lib.envd", "packages")\n'
                         'install.python_packages(name=packages(), requirements="sub/requirements.txt")\n'
                         'io.copy("sub", "/src")\n')
    assert [g.option("requirements") for g in env.groups if g.role == "pip"] == ["numpy==1.26\n"]


def test_a_loaded_module_may_reach_the_context_but_no_further(layout):
    (layout / "lib").mkdir()
    (layout / "shared.envd").write_text("SHARED = 1\n")
    (layout / "lib" / "a.envd").write_text('load("../shared.envd", "SHARED")\nA = SHARED\n')
    (layout / "lib" / "b.envd").write_text('load("../../.aws/credentials", "x")\n')
    assert _build(layout, 'load("lib/a.envd", "A")\n') is not None
    with pytest.raises(EnvdLoadError) as refused:
        _build(layout, 'load("lib/b.envd", "x")\n')
    assert str(refused.value).startswith(f"{layout / 'lib' / 'b.envd'}:1: ")


def test_cog_requirements_outside_the_context_fail_at_the_yaml_line(layout):
    (layout / "cog.yaml").write_text('build:\n  python_version: "3.11"\n  python_requirements: ../.aws/credentials\n')
    with pytest.raises(EnvdError) as refused:
        from_cog_yaml(layout / "cog.yaml")
    assert str(refused.value).startswith(f"{layout / 'cog.yaml'}:3: ") and SECRET not in str(refused.value)


LAUGHS = """build:
  python_version: "3.11"
  run: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
"""


def test_yaml_alias_expansion_past_the_budget_is_refused(layout):
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for name, previous in zip("bcd", "abc"):
        rows.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    (layout / "cog.yaml").write_text("\n".join(rows) + "\n" + LAUGHS)  # ~300 bytes, 9**5 entries expanded
    with pytest.raises(CogConfigError) as refused:
        from_cog_yaml(layout / "cog.yaml")
    assert f"YAML aliases expand to more than {MAX_YAML_NODES} nodes" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_self_referencing_alias_is_one_line(layout):
    (layout / "cog.yaml").write_text('build:\n  python_version: "3.11"\n  run: &loop [echo, *loop]\n')
    with pytest.raises(CogConfigError) as refused:
        from_cog_yaml(layout / "cog.yaml")
    assert str(refused.value) == f"{layout / 'cog.yaml'}:3: a YAML alias refers to a node that contains it"


def test_a_few_aliases_are_fine(layout):
    (layout / "cog.yaml").write_text('x: &pkgs ["rich"]\nbuild:\n  python_version: "3.11"\n'
                                     '  python_packages: *pkgs\n')
    assert [g.items for g in from_cog_yaml(layout / "cog.yaml", sdk=False).groups if g.role == "pip"] == [("rich",)]
