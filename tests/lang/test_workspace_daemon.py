"""A workspace cell's Definition solved on a real daemon: the failing step's error names the cell line."""

import pytest

from envd_jupyter import buildkit
from envd_jupyter.lang import Workspace

PYTHON_CELL = '''greeting = start.run("echo hello > /greeting")
(greeting
    .run("test -s /greeting")
    .run("exit 3"))'''
STARLARK_CELL = '''run(["test -s /greeting"])
run(["exit 3"])
'''


@pytest.mark.parametrize("language, source, line", [("python", PYTHON_CELL, 4), ("starlark", STARLARK_CELL, 2)])
def test_a_failing_step_names_the_cells_line(docker_current, daemon_env, tmp_path, language, source, line):
    ws = Workspace(context=tmp_path)
    ws.run_cell(1, f'llb.image({daemon_env["ENVD_IMAGE_BUSYBOX"]!r}).run("echo hello > /greeting")', name="base")
    cell = ws.run_cell(2, source, name="failing", language=language, start=ws.get("base"))
    with buildkit.connect("docker+unix://" + docker_current) as client, pytest.raises(buildkit.SolveError) as info:
        client.solve(cell.definition, timeout=300)
    assert info.value.exit_code == 3 and info.value.location == f"cell[2]:{line}"
    assert f"(cell[2]:{line}) failed with exit code 3" in str(info.value)
