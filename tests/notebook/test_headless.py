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
