"""explain_rebuild: which op changed first, which field, and the user's line."""

from types import SimpleNamespace

import pytest

from envd_jupyter import llb
from envd_jupyter.lang import exec_cell
from envd_jupyter.lang._explain import explain_rebuild
from envd_jupyter.lang._graph import compile_environment

CELL = '''base(image="python:3.11")
install.apt_packages(name=["git"])
install.python_packages(name=["numpy"])
install.python_packages(name=["{pandas}"])
run(["echo {message}"])
'''


def definition(pandas="pandas", message="hi"):
    env = exec_cell(CELL.format(pandas=pandas, message=message), name="build.envd")
    return compile_environment(env).marshal()


def located(line):
    return llb.located(llb.SourceLocation("cell[1]", line))


def test_pip_change_names_argv_and_the_users_line():
    report = explain_rebuild(definition(), definition(pandas="pandas==2.2"))
    (change,) = report.changes
    assert change.fields == ("argv",) and str(change.location) == "build.envd:4"
    assert change.details == ("argv: -['pandas'] +['pandas==2.2']",)
    assert len(report.downstream) >= 2  # its diff, the merge, the user run, the terminal
    assert "build.envd:4: [envd] pip install pandas==2.2: argv changed" in str(report)


def test_nothing_changed():
    first = definition()
    report = explain_rebuild(first, definition().to_bytes())
    assert report.unchanged and str(report).startswith("nothing changed")


def test_user_step_change_is_the_first_change_and_downstream_edits_are_listed():
    report = explain_rebuild(definition(), definition(message="bye"))
    (change,) = report.changes
    assert str(change.location) == "build.envd:5" and change.fields == ("argv",)


def test_env_mount_and_file_content_fields():
    def graph(value, cache_id, data):
        base = llb.image("busybox")
        with located(1):
            a = base.run("echo a", env={"MODE": value})
        with located(2):
            b = base.run("echo b", mounts=[llb.cache_mount("/cache", cache_id)])
        with located(3):
            c = base.mkfile("/f", data)
        return llb.merge([a, b, c]).marshal()

    report = explain_rebuild(graph("1", "x", b"one"), graph("2", "y", b"three"))
    fields = {str(c.location): c.fields for c in report.changes}
    assert fields == {"cell[1]:1": ("env",), "cell[1]:2": ("mount",), "cell[1]:3": ("file content",)}


def test_input_field_when_a_step_moves_onto_another_existing_op():
    a, b = llb.image("busybox"), llb.image("alpine")
    with located(7):
        before = llb.merge([a, b, b.run("make")]).marshal()
    with located(7):
        after = llb.merge([a, b, a.run("make")]).marshal()
    (change,) = explain_rebuild(before, after).changes
    assert change.fields == ("input",) and change.location.line == 7
    assert change.details == ("now from docker-image://docker.io/library/busybox:latest",)


def test_ran_and_cached_from_a_progress_model():
    first, second = definition(), definition(pandas="pandas==2.2")
    changed = set(second.digests) - set(first.digests)
    vertices = {d: SimpleNamespace(digest=d, name=f"v{i}", cached=d not in changed)
                for i, d in enumerate(second.digests[:-1])}
    report = explain_rebuild(first, second, progress=SimpleNamespace(vertices=vertices))
    ran_names = {s.name for s in report.ran}
    assert "[envd] pip install pandas==2.2" in ran_names
    assert "[envd] apt-get install git" in {s.name for s in report.cached}
    assert "ran " in str(report)


def test_a_downstream_step_with_its_own_edit_is_listed_too():
    report = explain_rebuild(definition(), definition(pandas="pandas==2.2", message="bye"))
    (first,) = report.changes
    (also,) = report.also_changed
    assert str(first.location) == "build.envd:4" and str(also.location) == "build.envd:5"
    assert also.fields[0] == "argv" and "also changed further down:" in str(report)


def test_builds_and_states_are_marshalled_and_other_values_rejected():
    def build(pandas):
        return compile_environment(exec_cell(CELL.format(pandas=pandas, message="hi"), name="build.envd"))

    report = explain_rebuild(build("pandas"), build("pandas==2.2"))  # EnvdBuild, as a notebook holds it
    assert [str(c.location) for c in report.changes] == ["build.envd:4"]
    assert explain_rebuild(llb.image("busybox"), llb.image("busybox")).unchanged
    with pytest.raises(TypeError, match="expected an llb Definition, its bytes, or a State/build to marshal, got str"):
        explain_rebuild("build.envd", definition())
