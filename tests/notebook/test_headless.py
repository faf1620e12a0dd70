"""A notebook executed headless (nbclient) keeps the widgets' final pictures in its saved outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

CELLS = [
    "from envd_jupyter.notebook import DAGWidget, ProgressWidget, show\n"
    "from tests.notebook._graphs import two_branches, two_branches_model\n"
    "dag = DAGWidget(two_branches())\n"
    "live = show(dag)",
    "progress = ProgressWidget(title='build')\n"
    "progress_live = show(progress)\n"
    "dag.update_model(two_branches_model())\n"
    "progress.update_model(two_branches_model())\n"
    "live.finish()\n"
    "progress_live.finish()",
    "ProgressWidget()",
]


@pytest.mark.timeout(180)
def test_saved_outputs_hold_the_final_static_pictures():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    first, second, third = (cell.outputs for cell in notebook.cells)
    [dag_output], [progress_output] = first, second
    assert set(dag_output.data) == {"text/plain", "text/html"}
    assert 'data-id="sha256:b1" data-state="failed"' in dag_output.data["text/html"]
    assert "1 failed" in dag_output.data["text/plain"]
    assert set(progress_output.data) == {"text/plain", "text/html"}
    assert progress_output.data["text/plain"].startswith("Build: 8 vertices · 3 ran · 2 cached · 1 failed")
    [plain_display] = third
    assert {"text/plain", "text/html", WIDGET_VIEW} <= set(plain_display.data)


STEP_CELLS = [
    '%load_ext envd_jupyter\n%config Envd.builder = "docker+unix://{socket}"',
    '%%envd walk --no-solve\n'
    'base = llb.image("envd-jupyter/busybox:latest").run("echo {token} > /one", name="one")\n'
    'base.run("echo 2 > /two", name="two").breakpoint().run("echo 3 > /three", name="three")',
    "%envd_step walk",
    "%envd_step walk --continue",
    "%envd_step walk --continue",
]


@pytest.mark.timeout(300)
def test_a_headless_run_keeps_each_stepper_position_in_the_saved_outputs(docker_current):
    import uuid

    cells = [source.format(socket=docker_current, token=uuid.uuid4().hex) for source in STEP_CELLS]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    positions = [("step 1/4: image ", "image envd-jupyter/busybox:latest  ◀ paused here"),
                 ("step 3/4: two", "two  ← 2  ● breakpoint  ◀ paused here"),
                 ("step 4/4: three", "three  ← 3  ◀ paused here")]
    for cell, (where, row) in zip(notebook.cells[2:], positions):
        [shown] = [o for o in cell.outputs if o.output_type == "display_data"]
        assert set(shown.data) == {"text/plain", "text/html"}  # no widget: nothing could draw it here
        assert where in shown.data["text/plain"] and row in shown.data["text/plain"], shown.data["text/plain"]
        assert shown.data["text/html"].count('data-paused="true"') == 1
        assert "Rebuild reasons" in shown.data["text/html"] and "files at " in shown.data["text/plain"]
    last = notebook.cells[4].outputs[-1]
    assert last.output_type == "execute_result" and "the last step; the stage stays open" in last.data["text/plain"]
