"""A failed ``%%envd`` cell in JupyterLab in Debian's chromium against dockerd 26: its one failure output.

The output shows the failing step, its exit code, its last log line, the cell line and a browser over
the files the command saw (dockerd 26 reports the failed step's own filesystem: the file the command
wrote before it failed is there, read by a click); the progress header says where the build stopped;
the cell ends with the one-line error. Screenshots: tests/artifacts/envd-failure-view.png (the output)
and envd-failure-cell.png (the whole cell).
"""

import uuid
from pathlib import Path

import pytest
from labdriver import drive, png_size, write_notebook

BUSYBOX = "envd-jupyter/busybox:latest"
BROKEN_CELL = """\
%%envd broken
prepared = llb.image("{busybox}").run("echo 'prepared {token}' > /prepared", name="prepare")
prepared.run("echo 'half {token}' > /half-done; echo 'compiling {token}'; exit 3", name="compile")"""

BOX = ".envd-failure-box"
FAILURE = f'{BOX} .envd-failure-widget[data-state-name="broken"] .envd-failure[data-shown="own"]'
TREE = f'{BOX} .envd-tree:has-text("half-done")'
PROGRESS = '.envd-progress-widget .envd-status:has-text("1 failed · stopped at compile")'
ERROR = 'pre:has-text("SolveError: step")'  # the one-line error the cell ends with
CELL_OUTPUTS = ".jp-Cell:nth-child(2) .jp-Cell-outputArea"


def shown(facts: dict, selector: str) -> list[dict]:
    return facts["selectors"][selector]["shown"]


@pytest.mark.timeout(600)
def test_a_failed_cell_shows_one_failure_output_with_the_files_the_command_saw(jupyter_lab, docker_current):
    token = uuid.uuid4().hex[:12]
    setup = f'%load_ext envd_jupyter\n%config Envd.builder = "docker+unix://{docker_current}"'
    notebook = write_notebook(jupyter_lab.root_dir / f"failure-{token}.ipynb", setup,
                              BROKEN_CELL.format(busybox=BUSYBOX, token=token))
    viewer = f'{BOX} .envd-viewer:has-text("half {token}")'

    facts = drive(jupyter_lab, notebook, wait_for=[BOX, FAILURE, TREE, PROGRESS, ERROR],
                  steps=[{"click": f'{BOX} .envd-tree span:has-text("half-done")', "wait": viewer}],
                  shots={BOX: "envd-failure-view", CELL_OUTPUTS: "envd-failure-cell"},
                  viewport=(1400, 2200), screenshot="lab-envd-failure")

    assert facts["pageErrors"] == [], facts["pageErrors"]
    [view] = shown(facts, FAILURE)
    assert "✗ step 'compile' failed with exit code 3" in view["text"] and f"compiling {token}" in view["text"]
    assert "made by cell[broken]:2" in view["text"]
    assert "Files below: as the failed step 'compile' saw them when it failed" in view["text"]
    [tree] = shown(facts, TREE)
    assert "prepared" in tree["text"]
    assert any(f"half {token}" in item["text"] for item in shown(facts, viewer))  # read over the failed mounts
    [error] = shown(facts, ERROR)
    assert "SolveError: step 'compile' (cell[broken]:2) failed with exit code 3" in error["text"]
    # one failure output: the view and the browser share one output, before the error
    [output] = shown(facts, BOX)
    assert output["cell"] == view["cell"] == error["cell"] == 1 and output["seq"] < error["seq"]
    for selector in (BOX, CELL_OUTPUTS):
        width, height = png_size(Path(facts["shots"][selector]))
        assert width > 600 and height > 200, (selector, width, height)
