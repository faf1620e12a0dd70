"""The stepper in JupyterLab in Debian's chromium against a real daemon: clicks on its buttons step a build.

Next and Continue are clicked as a user would; the kernel answers through the widgets: the DAG
outlines the paused vertex, dots the breakpoint and lists the rebuild reasons beside it, the browser
shows the pause's files, and a failing step shows its failure view. Each run's commands carry a
fresh token, so the steps really run. Screenshots: tests/artifacts/stepper-paused.png and
failure-view.png (copied to docs/images/).
"""

import uuid
from pathlib import Path

import pytest
from labdriver import drive, png_size, write_notebook

BUSYBOX = "envd-jupyter/busybox:latest"
WALK_CELL = """\
%%envd walk --no-solve
base = llb.image("{busybox}")
left = base.run("mkdir -p /app && echo 'left {token}' > /app/left", name="left")
right = base.run("echo 'right {token}' > /right", name="right")
joined = left.run("cp /r/right /app/joined", name="join", mounts=[llb.bind_mount("/r", right)])
joined.breakpoint().run("echo done > /done", name="finish")"""
BROKEN_CELL = """\
%%envd broken --no-solve
prepared = llb.image("{busybox}").run("echo 'prepared {token}' > /prepared", name="prepare")
prepared.run("echo half > /half-done; echo 'compiling {token}'; exit 3", name="compile")"""


def box(state: str) -> str:
    return f'.envd-stepper-box:has(.envd-stepper-widget[data-state-name="{state}"])'


def stepper(state: str, status: str, text: str) -> str:
    return f'.envd-stepper-widget[data-state-name="{state}"][data-status="{status}"]:has-text("{text}")'


def shown(facts: dict, selector: str) -> list[dict]:
    return facts["selectors"][selector]["shown"]


@pytest.mark.timeout(600)
def test_clicking_next_and_continue_steps_the_build_and_a_failing_step_shows_its_failure_view(jupyter_lab,
                                                                                            docker_current):
    token = uuid.uuid4().hex[:12]
    setup = f'%load_ext envd_jupyter\n%config Envd.builder = "docker+unix://{docker_current}"'
    notebook = write_notebook(jupyter_lab.root_dir / f"stepper-{token}.ipynb", setup,
                              WALK_CELL.format(busybox=BUSYBOX, token=token), "%envd_step walk",
                              BROKEN_CELL.format(busybox=BUSYBOX, token=token), "%envd_step broken")
    walk, broken = box("walk"), box("broken")
    at_two = stepper("walk", "paused", "step 2/5")
    at_join = stepper("walk", "paused", "step 4/5: join")
    paused_node = f'{walk} .envd-node[data-paused="true"]'
    breakpoint_node = f'{walk} .envd-node[data-breakpoint="true"]'
    joined_file = f'{walk} .envd-tree span:has-text("joined")'
    app_dir = f'{walk} .envd-tree span:has-text("app/")'
    viewer = f'{walk} .envd-viewer:has-text("right {token}")'
    reasons = f'{walk} .envd-reasons li.envd-reason'
    failure = f'{stepper("broken", "failed", "failed at step 3/3: compile")} .envd-failure'
    failed_tree = f'{broken} .envd-tree:has-text("prepared")'
    failed_node = f'{broken} .envd-node[data-state="failed"][data-paused="true"]'
    broken_viewer = f'{broken} .envd-viewer:has-text("prepared {token}")'

    facts = drive(jupyter_lab, notebook, wait_for=[stepper("walk", "paused", "step 1/5"),
                                                   stepper("broken", "paused", "step 1/3"), paused_node, reasons],
                  steps=[{"click": f'{walk} .envd-step-next', "wait": at_two},
                         {"click": f'{walk} .envd-step-continue', "wait": at_join},
                         {"click": app_dir, "wait": joined_file},
                         {"click": joined_file, "wait": viewer},
                         {"click": f'{broken} .envd-step-continue', "wait": failed_tree},
                         {"click": f'{broken} .envd-tree span:has-text("prepared")', "wait": broken_viewer},
                         {"click": failure, "wait": failed_node}],
                  shots={walk: "stepper-paused", broken: "failure-view"},
                  viewport=(1400, 2400), screenshot="lab-stepper")

    assert facts["prompts"] == [f"[{n}]:" for n in range(1, 6)], facts["prompts"]
    assert facts["pageErrors"] == [], facts["pageErrors"]
    # Paused at the breakpoint: the DAG outlines join, which also carries the breakpoint's dot.
    [paused] = shown(facts, paused_node)
    assert paused["text"].startswith("join") and paused["data"]["breakpoint"] == "true", paused
    assert "paused at breakpoint step 4/5: join" in shown(facts, at_join)[0]["text"]  # Continue stopped there
    assert "breakpoints: join" in shown(facts, at_join)[0]["text"]
    # Beside it, why each step ran: the first solve of walk in this kernel, so every new step says so.
    rows = {row["text"].split()[1]: row for row in shown(facts, reasons)}
    for name in ("left", "right", "join"):
        assert rows[name]["data"]["status"] == "ran" and "first solve" in rows[name]["text"], rows
    # Its files: /app/joined holds what the right branch wrote, read through the browser.
    assert any(f"right {token}" in item["text"] for item in shown(facts, viewer))
    # The failure view: the step, its exit code, its last log line, the user's line, and the files the step saw
    # (dockerd 26 reports its own filesystem as it was when it failed: the file it wrote before exiting is there).
    [view] = shown(facts, failure)
    assert "✗ step 'compile' failed with exit code 3" in view["text"] and f"compiling {token}" in view["text"]
    assert "cell[broken]:2" in view["text"] and "as the failed step 'compile' saw them when it failed" in view["text"]
    tree = shown(facts, failed_tree)[0]["text"]
    assert "prepared" in tree and "half-done" in tree
    assert len(shown(facts, failed_node)) == 1  # the DAG marks the failed step where the stepper stopped
    for selector in (walk, broken):
        width, height = png_size(Path(facts["shots"][selector]))
        assert width > 600 and height > 300, (selector, width, height)
