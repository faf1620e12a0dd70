"""``breakpoint()`` in envd cells and build.envd files: a stepper mark in op metadata, never in a digest."""

from __future__ import annotations

import pytest

from envd_jupyter import llb
from envd_jupyter.lang import CellError, EnvdArgumentError, Workspace, load_file

BASE = "envd-jupyter/busybox:latest"
ALL_CAPS = frozenset({"source.image", "source.local", "source.local.unique", "exec.meta.base", "exec.mount.bind",
                      "file.base", "constraints", "platform", "mergeop", "diffop", "meta.description"})
# The three graph forms a cell can reach a daemon in: parallel (merge/diff), sequential (no merge/diff),
# and an llb merge lowered to copies (no mergeop; what Definition.lower_for sends BuildKit 0.8).
PARALLEL, SEQUENTIAL = None, frozenset()

RECORDED = '''base(image="{base}")
install.apt_packages(name=["tree"])
{mark1}run(["echo one > /one"])
{mark2}run(["echo two > /two"])
'''
CHAINED = 'image("{base}").apt_packages(["tree"]){mark1}.run("echo one > /one"){mark2}.run("echo two > /two")'


@pytest.fixture
def ws(tmp_path):
    return Workspace(context=tmp_path)


def marked(definition: llb.Definition) -> list[str]:
    """Names of the vertices a stepper pauses after."""
    return [v.name for v in definition.vertices()
            if (definition.metadata[v.digest].description or {}).get(llb.BREAKPOINT_KEY) == "true"]


def recorded(with_marks: bool) -> str:
    mark = "breakpoint()\n" if with_marks else ""
    return RECORDED.format(base=BASE, mark1=mark, mark2=mark)


def chained(with_marks: bool) -> str:
    mark = ".breakpoint()" if with_marks else ""
    return CHAINED.format(base=BASE, mark1=mark, mark2=mark)


CELLS = {  # language, body with and without breakpoints
    "starlark recorded": ("starlark", recorded),
    "starlark build()": ("starlark", lambda m: "def build():\n" + "".join(
        f"    {line}\n" for line in recorded(m).splitlines())),
    "starlark chain": ("starlark", lambda m: f"def build():\n    return {chained(m)}\n"),
    "python chain": ("python", chained),
}


@pytest.mark.parametrize("form", CELLS)
@pytest.mark.parametrize("caps", [PARALLEL, SEQUENTIAL], ids=["parallel", "sequential"])
def test_breakpoints_change_no_digest_and_mark_the_stage_built_so_far(ws, form, caps):
    language, body = CELLS[form]
    plain = ws.run_cell("plain", body(False), name="plain", language=language).marshal(caps)
    cell = ws.run_cell("marked", body(True), name="marked", language=language)
    definition = cell.marshal(caps)
    assert definition.digests == plain.digests
    assert definition.to_bytes() != plain.to_bytes()  # the marks travel in the metadata
    managed = "merge (2)" if caps is PARALLEL else "[envd] apt-get install tree"
    assert marked(definition) == [managed, "[user] echo one > /one"]


def test_a_python_cell_marks_llb_states_and_the_lowered_merge_keeps_the_mark(ws):
    body = '''left = llb.image(BASE).run("echo l > /l", name="left")
right = llb.image(BASE).run("echo r > /r", name="right")
joined = merge([{left}, right])
{joined}.run("ls", name="list")'''
    plain = ws.run_cell(1, body.format(left="left", joined="joined"), name="plain", namespace={"BASE": BASE})
    cell = ws.run_cell(2, body.format(left="breakpoint(left)", joined="joined.breakpoint()"), name="marked",
                       namespace={"BASE": BASE})
    assert cell.definition.digests == plain.definition.digests
    assert marked(cell.definition) == ["left", "merge (2)"]
    lowered, lowered_plain = (c.definition.lower_for(ALL_CAPS - {"mergeop"}) for c in (cell, plain))
    assert lowered.digests == lowered_plain.digests and lowered.digests != cell.definition.digests
    assert marked(lowered) == ["left", "copy / → /"]  # the copy that replaced the merge keeps its mark


def test_a_breakpoint_written_among_installs_marks_the_whole_managed_stage(ws):
    """Installs are parallel branches whatever their order: a mark between them cannot split them."""
    cell = ws.run_cell(1, f'image("{BASE}").apt_packages(["tree"]).breakpoint().python_packages(["six"])',
                       name="env")
    plain = ws.run_cell(2, f'image("{BASE}").apt_packages(["tree"]).python_packages(["six"])', name="plain")
    assert cell.definition.digests == plain.definition.digests
    assert marked(cell.definition) == ["merge (4)"]  # base, apt, venv, pip


def test_a_build_envd_file_and_the_module_it_loads_record_breakpoints(tmp_path):
    (tmp_path / "steps.envd").write_text('def setup():\n    run(["echo lib > /lib"])\n    breakpoint()\n')
    (tmp_path / "build.envd").write_text(f'load("steps.envd", "setup")\n\ndef build():\n    base(image="{BASE}")\n'
                                         '    setup()\n    run(["echo app > /app"])\n    breakpoint()\n')
    env = load_file(tmp_path / "build.envd")
    assert [(mark.after, str(mark.at)) for mark in env.breakpoints] == [
        (1, f"{tmp_path / 'steps.envd'}:3"), (2, f"{tmp_path / 'build.envd'}:7")]
    assert marked(env.marshal()) == ["[user] echo lib > /lib", "[user] echo app > /app"]


def test_a_state_from_another_cell_keeps_its_breakpoint(ws):
    ws.run_cell(1, f'image("{BASE}").run("echo a > /a").breakpoint()', name="first")
    cell = ws.run_cell(2, 'run(["echo b > /b"])', name="second", language="starlark", start=ws.get("first"))
    assert marked(cell.definition) == ["[user] echo a > /a"]


def test_breakpoint_mistakes_are_one_line_errors_at_the_users_line(ws):
    with pytest.raises(CellError, match=r"^cell\[1\]:2: breakpoint: give the state to pause after, as "
                                        r"breakpoint\(state\) or state.breakpoint\(\) \(got nothing\)$"):
        ws.run_cell(1, f'state = image("{BASE}")\nbreakpoint()\nstate', name="bad")
    with pytest.raises(CellError, match=r"^cell\[2\]:1: breakpoint: .*\(got str\)$"):
        ws.run_cell(2, 'breakpoint("not a state")', name="bad")
    with pytest.raises(EnvdArgumentError, match=r"^cell\[3\]:2: breakpoint: takes 0 positional arguments but 1 "
                                                r"positional argument was given$"):
        ws.run_cell(3, f'base(image="{BASE}")\nbreakpoint("here")\n', name="bad", language="starlark")
    with pytest.raises(EnvdArgumentError, match=r"^cell\[4\]:1: breakpoint: nothing is built yet to pause after$"):
        ws.run_cell(4, 'breakpoint()\nrun(["true"])\n', name="bad", language="starlark", start=llb.scratch())
    with pytest.raises(EnvdArgumentError, match=r"^cell\[5\]:2: \.breakpoint: takes 0 positional arguments"):
        ws.run_cell(5, f'def build():\n    return image("{BASE}").breakpoint(1)\n', name="bad", language="starlark")
    assert set(ws.states) == set()  # nothing of a failing cell is kept


def test_wrong_argument_counts_of_envd_rules_leave_self_out(ws):
    with pytest.raises(EnvdArgumentError, match=r"^cell\[1\]:1: base: takes from 0 to 2 positional arguments "
                                                r"but 3 positional arguments were given$"):
        ws.run_cell(1, f'base("{BASE}", False, 3)', name="bad", language="starlark")
