"""`%%envd` in JupyterLab in Debian's chromium, against the real daemons: what a user sees.

A two-branch graph scheduled across the project's three daemons renders its DAG (every node in
its final state), live progress, the scheduling scores, the summary and the result browser; a
clicked node shows its details; a background build leaves the kernel free for the next cell.
Each run's commands carry a fresh token, so the build really runs instead of coming from cache.
"""

import re
import uuid
from pathlib import Path

import pytest
from labdriver import drive, png_size, write_notebook

BUSYBOX = "envd-jupyter/busybox:latest"
SETUP_CELL = """\
%load_ext envd_jupyter
from envd_jupyter import fleet
%config Envd.builders = fleet.project_builders()"""
BUILD_CELL = """\
%%envd app
base = llb.image("{busybox}").run("mkdir -p /app && echo 'app {token}' | tee /app/token", name="make /app")
tools = base.run("mkdir -p /opt/tools && echo 'tool {token}' | tee /opt/tools/VERSION", name="install tools")
data = base.run("echo 'rows {token}' | tee /app/data.yaml", name="fetch data")
merge([base, diff(base, tools), diff(base, data)])"""
LIST_CELL = "%envd_ls app /"
STEPS = {"make /app": "app", "install tools": "tool", "fetch data": "rows"}  # name: what its log line starts with
DAG_NODE_COUNT = 7  # image, three runs, two diffs, the merge

DAG_NODES = ".envd-dag-widget .envd-node"
# No node pending or running: the DAG shows the solve's end.
DAG_FINAL = ('.envd-dag-widget svg:not(:has(.envd-node[data-state="pending"]))'
             ':not(:has(.envd-node[data-state="running"]))')
PROGRESS_DONE = '.envd-progress-widget .envd-status:has-text("failed · done")'
PROGRESS_ROWS = ".envd-progress-widget tr.envd-row"
SCORES = '.envd-scores-widget:has-text("removed by caps-filter")'
SUMMARY = '.envd-summary:has-text("app: solved on")'
BROWSER_TREE = '.envd-browser-widget .envd-tree:has-text("opt/")'
LISTING = '.envd-listing:has-text("opt/")'
CLICK_NODE = '.envd-dag-widget .envd-node:has-text("install tools")'
DETAILS = '.envd-dag-widget .envd-details:not([hidden]) h4:has-text("install tools")'


def shown(facts: dict, selector: str) -> list[dict]:
    return facts["selectors"][selector]["shown"]


def the_one(facts: dict, selector: str) -> dict:
    [found] = shown(facts, selector)
    assert found["visible"] and found["width"] > 0 and found["height"] > 0, found
    return found


def assert_clean_page(facts: dict, cells: int) -> None:
    assert facts["prompts"] == [f"[{n}]:" for n in range(1, cells + 1)], facts["prompts"]
    assert facts["stderr"] == [] and facts["pageErrors"] == [], (facts["stderr"], facts["pageErrors"])


@pytest.mark.timeout(600)
def test_a_two_branch_build_on_the_fleet_renders_every_widget(jupyter_lab, docker_current, docker_classic,
                                                              docker_old):
    token = uuid.uuid4().hex[:12]
    notebook = write_notebook(jupyter_lab.root_dir / f"envd-{token}.ipynb", SETUP_CELL,
                              BUILD_CELL.format(busybox=BUSYBOX, token=token), LIST_CELL)

    facts = drive(jupyter_lab, notebook,
                  wait_for=[DAG_NODES, DAG_FINAL, PROGRESS_DONE, PROGRESS_ROWS, SCORES, SUMMARY, BROWSER_TREE,
                            LISTING],
                  steps=[{"click": CLICK_NODE, "wait": DETAILS}],
                  shots={".jp-Cell:nth-child(2) .jp-Cell-outputArea": "lab-envd-build-outputs"},
                  viewport=(1400, 2000), screenshot="lab-envd-build")

    assert_clean_page(facts, cells=3)
    nodes = shown(facts, DAG_NODES)
    assert len(nodes) == DAG_NODE_COUNT
    assert {node["data"]["state"] for node in nodes} <= {"done", "cached"}, nodes
    for name in STEPS:  # the runs carry this test's token: they ran, none came from cache
        [node] = [n for n in nodes if n["text"].startswith(name)]
        assert node["data"]["state"] == "done", node

    # The daemon may report the image twice (by tag and pinned), so the vertex count is not fixed.
    header = the_one(facts, PROGRESS_DONE)["text"]
    assert re.fullmatch(r"\d+ vertices · 6 ran · 0 cached · 0 failed · done", header), header
    rows = [row["text"] for row in shown(facts, PROGRESS_ROWS)]
    assert len(rows) >= DAG_NODE_COUNT, rows
    assert rows[0].startswith("1\t") and "busybox" in rows[0], rows  # build order: the image first
    for name, log in STEPS.items():  # each step's row: done, with its last log line
        [row] = [row for row in rows if f"\t{name}\t" in row]
        assert "\tdone\t" in row and f"{log} {token}" in row, row
    assert not any("pending" in row or "running" in row for row in rows), rows

    scores = the_one(facts, SCORES)["text"]
    assert "3 candidates" in scores, scores
    removed = re.search(r"removed by caps-filter: (.+)", scores).group(1).split(", ")
    picked = re.search(r"scheduled on (\w+)", scores).group(1)
    assert picked not in removed and {picked, *removed} <= {"current", "classic", "old"}, scores
    for endpoint in ("current", "classic", "old"):
        assert endpoint in scores

    summary = the_one(facts, SUMMARY)["text"]
    assert re.fullmatch(rf"app: solved on {picked} in [\d.]+s — 6 steps ran, \d+ cached", summary.strip()), summary

    tree = the_one(facts, BROWSER_TREE)["text"]
    assert "app/" in tree and "opt/" in tree
    listing = the_one(facts, LISTING)
    assert listing["cell"] == 2 and "app/" in listing["text"] and "tmp/" in listing["text"]

    assert the_one(facts, DETAILS)["text"] == "install tools"
    assert facts["shots"] == {".jp-Cell:nth-child(2) .jp-Cell-outputArea":
                              str(Path(facts["screenshot"]).with_name("lab-envd-build-outputs.png"))}
    assert png_size(Path(facts["screenshot"])) == (1400, 2000)
    width, height = png_size(Path(facts["shots"][".jp-Cell:nth-child(2) .jp-Cell-outputArea"]))
    assert width > 600 and height > 400


SLOW_CELL = """\
%%envd slow --background
llb.image("{busybox}").run("sleep 5; echo '{token}' > /token", name="sleep 5")"""
PROBE_CELL = 'print("probe answered")'
READ_CELL = "%envd_cat slow /token"
PROBE_OUTPUT = 'pre:has-text("probe answered")'
SLOW_SUMMARY = '.envd-summary:has-text("slow: solved on")'
SLOW_PROGRESS_DONE = '.envd-progress-widget .envd-status:has-text("failed · done")'


@pytest.mark.timeout(600)
def test_a_background_build_leaves_the_kernel_free_for_the_next_cell(jupyter_lab, docker_current):
    token = uuid.uuid4().hex[:12]
    setup = f'%load_ext envd_jupyter\n%config Envd.builder = "docker+unix://{docker_current}"'
    notebook = write_notebook(jupyter_lab.root_dir / f"background-{token}.ipynb", setup,
                              SLOW_CELL.format(busybox=BUSYBOX, token=token), PROBE_CELL, READ_CELL)
    token_output = f'.envd-text:has-text("{token}")'

    # Tall enough for every cell: Lab may redraw outputs it scrolls back into view, renumbering them.
    facts = drive(jupyter_lab, notebook, wait_for=[PROBE_OUTPUT, SLOW_SUMMARY, SLOW_PROGRESS_DONE, token_output],
                  viewport=(1400, 2000), screenshot="lab-envd-background")

    assert_clean_page(facts, cells=4)
    probe, summary = the_one(facts, PROBE_OUTPUT), the_one(facts, SLOW_SUMMARY)
    assert probe["seq"] < summary["seq"], (probe, summary)  # the probe answered while the build ran
    # The build's displays stay with the cell that started it, not the one running when they came.
    assert summary["cell"] == 1 and the_one(facts, SLOW_PROGRESS_DONE)["cell"] == 1, facts["selectors"]
    assert probe["cell"] == 2
    assert the_one(facts, token_output)["cell"] == 3
