"""lang.Workspace: cells by id, named states, the cell's line on every op, one-line errors naming it."""

import subprocess
import sys

import pytest

from envd_jupyter import llb
from envd_jupyter.buildkit import Caps
from envd_jupyter.lang import (
    CellError,
    EnvdArgumentError,
    EnvdError,
    EnvdState,
    EnvdSyntaxError,
    Workspace,
    image,
)

WITHOUT_MERGE = Caps(llb=frozenset({"exec.meta.base", "file.base"}), gateway=frozenset())


@pytest.fixture
def ws(tmp_path):
    return Workspace(context=tmp_path)


def op_locations(definition) -> dict[str, list[str]]:
    """Op label (exec: its last argv word, source: its identifier) → its locations as "file:line"."""
    out = {}
    for digest, op in zip(definition.digests[:-1], definition.ops[:-1]):
        kind = op.WhichOneof("op")
        label = op.exec.meta.args[-1] if kind == "exec" else op.source.identifier if kind == "source" else kind
        out[label] = [str(loc) for loc in definition.locations(digest)]
    return out


def test_a_python_cell_is_the_value_of_its_last_expression(ws):
    cell = ws.run_cell(1, 'tools = ["git"]\nimage("busybox").apt_packages(tools)', name="base")
    assert isinstance(cell.state, EnvdState) and (cell.name, cell.location_file) == ("base", "cell[1]")
    expected = image("busybox").apt_packages(["git"]).marshal(local_unique_id=cell.local_unique_id)
    assert cell.definition.digests == expected.digests
    assert ws.states == {"base": cell.state} and ws.get("base") is cell.state


def test_rerunning_a_cell_replaces_its_contribution(ws):
    ws.run_cell("a", 'image("busybox").apt_packages(["git"])', name="env")
    again = ws.run_cell("a", 'image("busybox").apt_packages(["git"])', name="env")
    assert list(ws.states) == ["env"]
    assert [g.role for g in again.state.environment.groups] == ["apt"]  # not appended a second time
    renamed = ws.run_cell("a", 'image("busybox").apt_packages(["vim"])', name="tools")
    assert ws.states == {"tools": renamed.state}


def test_the_cell_run_last_wins_a_shared_name(ws):
    first = ws.run_cell(1, 'llb.image("busybox")', name="x")
    second = ws.run_cell(2, 'llb.image("alpine")', name="x")
    assert ws.get("x") is second.state
    first = ws.run_cell(1, 'llb.image("busybox")', name="x")
    assert ws.get("x") is first.state


def test_a_failing_cell_leaves_the_workspace_as_it_was(ws):
    kept = ws.run_cell(1, 'llb.image("busybox")', name="x")
    with pytest.raises(CellError):
        ws.run_cell(1, 'llb.image(busybox)', name="y")
    assert ws.states == {"x": kept.state}


def test_python_errors_are_one_line_naming_the_cell_line(ws):
    with pytest.raises(CellError) as info:
        ws.run_cell(3, 'base = "busybox"\nimgae(base)', name="x")
    assert str(info.value) == "cell[3]:2: NameError: name 'imgae' is not defined"
    with pytest.raises(CellError) as info:
        ws.run_cell(3, 'def f():\n    return 1 / 0\n\nf()', name="x")
    assert str(info.value) == "cell[3]:2: ZeroDivisionError: division by zero"
    with pytest.raises(EnvdSyntaxError) as info:
        ws.run_cell(3, 'x = 1\nimage("a"', name="x")
    assert str(info.value).startswith("cell[3]:2: SyntaxError: ")
    with pytest.raises(EnvdSyntaxError, match=r"^cell\[3\]:1: SyntaxError: 'return' outside function$"):
        ws.run_cell(3, 'return 1\nimage("a")', name="x")


def test_a_cell_must_end_with_a_state(ws):
    with pytest.raises(CellError, match=r"^notebook.py:2: the cell must end with an expression"):
        ws.run_cell(3, 'x = 1\ny = image("a")', name="x", filename="notebook.py")
    with pytest.raises(CellError, match=r"^cell\[3\]:2: the cell's last expression must give a state .*got int$"):
        ws.run_cell(3, 'x = 1\nx + 1', name="x")


def test_envd_errors_from_the_chain_keep_their_own_text_and_cell_line(ws):
    with pytest.raises(EnvdArgumentError) as info:
        ws.run_cell(4, 'root = image("busybox")\nroot.apt_packages(3)', name="x")
    assert str(info.value) == "cell[4]:2: install.apt_packages: for parameter name: got int, want list"


def test_every_op_a_python_cell_makes_names_the_cell_line(ws):
    cell = ws.run_cell(2, 'root = start.run("echo a")\n(root\n    .run("echo b")\n    .run("exit 3"))',
                       name="x", start=llb.image("busybox"), filename="nb.ipynb#2")
    locations = op_locations(cell.definition)
    assert locations["echo a"] == ["nb.ipynb#2:1"] and locations["echo b"] == ["nb.ipynb#2:3"]
    assert locations["exit 3"] == ["nb.ipynb#2:4"]
    assert locations["docker-image://docker.io/library/busybox:latest"] == []  # made outside the cell


def test_chain_steps_written_over_several_lines_name_each_line(ws):
    base = ws.run_cell(1, 'image("busybox")', name="base")
    cell = ws.run_cell(2, '(start\n   .run("echo a")\n   .run("exit 3"))', name="x", start=base.state)
    locations = op_locations(cell.definition)
    assert locations["set -e\necho a"] == ["cell[2]:2"] and locations["set -e\nexit 3"] == ["cell[2]:3"]
    assert locations["docker-image://docker.io/library/busybox:latest"] == ["cell[1]:1"]


def test_the_users_namespace_is_visible_and_the_cell_keeps_its_own_names(ws):
    namespace = {"BASE": "busybox", "image": "the user's own", "with_tools": lambda s: s.apt_packages(["git"])}
    cell = ws.run_cell(1, 'root = image(BASE)\nwith_tools(root)', name="x", namespace=namespace)
    assert [g.items for g in cell.state.environment.groups] == [("git",)]
    assert "root" not in namespace and namespace["image"] == "the user's own"


def test_merge_and_diff_take_llb_states_chain_states_or_both(ws):
    plain = ws.run_cell(1, 'merge([llb.image("busybox"), scratch().mkfile("/a", b"a")])', name="plain")
    assert isinstance(plain.state, llb.State)
    both = ws.run_cell(2, 'merge([image("busybox").python_packages(["black"]), scratch().mkfile("/a", b"a")])',
                       name="both")
    assert isinstance(both.state, EnvdState) and both.state.image_config.env  # the chain's venv config kept
    assert "diff" not in [op.WhichOneof("op") for op in both.marshal(WITHOUT_MERGE).ops]
    upper = ws.run_cell(3, 'diff(llb.image("busybox"), llb.image("busybox").run("echo a"))', name="d")
    assert isinstance(upper.state, llb.State)


def test_local_sources_keep_their_digests_from_run_to_run(ws):
    source = 'llb.image("busybox").copy(local("context"), "/src", "/src")'
    assert ws.run_cell(1, source, name="x").definition.digests == ws.run_cell(1, source, name="x").definition.digests


def test_starlark_cells_start_from_the_named_state(ws):
    ws.run_cell(1, 'image("busybox").apt_packages(["git"])', name="base")
    recorded = ws.run_cell(2, 'install.python_packages(name=["numpy"])\nrun(["exit 3"])\n', name="app",
                           language="starlark", start=ws.get("base"))
    locations = op_locations(recorded.definition)
    assert locations["set -e\nexit 3"] == ["cell[2]:2"]
    assert not any("ubuntu" in label for label in locations)  # start replaced base()'s default image
    chained = ws.run_cell(3, 'def build():\n    return start.run("echo b")\n', name="chained", language="starlark",
                          start=ws.get("base"))
    assert [g.items for g in chained.state.environment.groups] == [("git",)]
    with pytest.raises(EnvdArgumentError, match=r"^cell\[4\]:1: base: this environment already starts from"):
        ws.run_cell(4, 'base(image="busybox")\n', name="y", language="starlark", start=ws.get("base"))


def test_unknown_names_and_languages_are_one_line_errors(ws):
    ws.run_cell(1, 'llb.image("busybox")', name="base")
    ws.run_cell(2, 'llb.image("alpine")', name="alpine")
    with pytest.raises(EnvdError, match=r"^no state named 'bsae' \(known: alpine, base\)$"):
        ws.get("bsae")
    with pytest.raises(EnvdArgumentError, match="language must be 'python' or 'starlark', got 'bash'"):
        ws.run_cell(3, "true", name="x", language="bash")
    with pytest.raises(EnvdError, match=r"known: none yet"):
        Workspace().get("x")
    with pytest.raises(EnvdError, match=r"^cell\[4\]:2: no state named 'other' \(known: alpine, base\)$"):
        ws.run_cell(4, 'x = 1\nworkspace.get("other")', name="y", namespace={"workspace": ws})


def test_previous_gives_the_definition_last_recorded_for_a_name(ws):
    first = ws.run_cell(1, 'llb.image("busybox").run("echo a")', name="x").definition
    assert ws.previous("x") is None
    ws.record_solve("x", first)
    second = ws.run_cell(1, 'llb.image("busybox").run("echo b")', name="x").definition
    assert ws.previous("x") is first
    ws.record_solve("x", second)
    assert ws.previous("x") is second and ws.previous("y") is None
    with pytest.raises(EnvdArgumentError, match="want an llb.Definition, got bytes"):
        ws.record_solve("x", second.to_bytes())


def test_lang_imports_neither_ipython_nor_grpc():
    code = "import sys, envd_jupyter.lang\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'IPython'}))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_the_last_two_solves_of_a_name_are_kept_for_explaining_a_rebuild(tmp_path):
    ws = Workspace(tmp_path)
    definitions = [ws.run_cell("c", f'image("busybox").run("echo {n}")', name="s").definition for n in range(3)]
    assert ws.solves("s") == () and ws.previous("s") is None
    for definition in definitions:
        ws.record_solve("s", definition)
    assert ws.solves("s") == tuple(definitions[1:])
    assert ws.previous("s") is definitions[-1]


def test_a_cell_says_what_its_solve_needs_besides_the_graph(tmp_path):
    ws = Workspace(tmp_path, network="host")
    cell = ws.run_cell("c", 'image("busybox").run("echo hi")', name="s")
    assert ws.cell("s") is cell
    assert cell.solve_options() == {"local_dirs": {"context": str(tmp_path)}, "entitlements": ["network.host"]}
    with pytest.raises(EnvdError, match="known: s"):
        ws.cell("nope")
