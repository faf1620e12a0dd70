"""The envd side panel in JupyterLab in Debian's chromium, against the real server extension and daemons.

A cell builds on the project's fleet; the panel then shows the builders, the notebook's state (and
its DAG when clicked), the build in the merged history (daemon record + the kernel's archive entry)
and its detail with steps and scheduling scores; "+ cell" inserts a cell continuing from the state.
Screenshots in both themes go to tests/artifacts/lab-panel*.png.
"""

import re
import uuid
from pathlib import Path

import pytest
from labdriver import ARTIFACTS, LabServer, drive_panel, png_size, write_notebook

BUSYBOX = "envd-jupyter/busybox:latest"
SETUP_CELL = """\
%load_ext envd_jupyter
from envd_jupyter import fleet
%config Envd.builders = fleet.project_builders()"""
BUILD_CELL = """\
%%envd app
base = llb.image("{busybox}").run("echo 'app {token}' > /token", name="make token")
base.run("cat /token", name="read token")"""
STEP_NAMES = ("make token", "read token")

BUILDERS = ".envd-lab-builder"
CURRENT = '.envd-lab-builder[data-name="current"][data-healthy="true"]'
STATE = '.envd-lab-state[data-name="app"][data-status="ok"]'
STATE_TOGGLE = '.envd-lab-state[data-name="app"] .envd-lab-state-toggle'
DAG_NODES = '.envd-lab-state[data-name="app"] .envd-lab-dag-node'
INSERT = '.envd-lab-state[data-name="app"] .envd-lab-insert'
NEW_CELL = '!.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content:has-text("--from app")'
STEPS = ".envd-lab-step"
SCORES = ".envd-lab-score"
FACTS = ".envd-lab-facts dd"
FOCUSED = ":focus"


def row(name: str) -> str:
    return f'.envd-lab-history-row[data-status="ok"]:has(.envd-lab-row-name:text-is("{name}"))'


@pytest.fixture(scope="module")
def panel_lab(tmp_path_factory):
    """Lab with the server extension and a fresh build archive the kernels and the server share."""
    work = tmp_path_factory.mktemp("panel-lab-home")
    with LabServer(root_dir=tmp_path_factory.mktemp("panel-lab-root"), work_dir=work,
                   log_path=ARTIFACTS / "jupyterlab-panel.log",
                   env={"ENVD_JUPYTER_HISTORY": str(work / "history.sqlite3")}) as lab:
        yield lab


def panel_errors(facts: dict) -> list[str]:
    """Errors thrown by the panel's own code (Lab's core may lose a request when the host's network
    changes under Chromium: other daemons' bridges; that is not the panel's to answer for)."""
    return [error for error in facts["pageErrors"] if "/extensions/envd-jupyter/" in error
            or "envd" in error.split("\n")[0]]


def shown(facts: dict, selector: str, step: int) -> list[dict]:
    """What panel.mjs saw of `selector` at the end of step number `step`."""
    return facts["steps"][step][selector]["shown"]


@pytest.mark.timeout(600)
def test_the_panel_shows_the_builders_the_state_and_the_build_with_its_steps_and_scores(
        panel_lab, docker_current, docker_classic, docker_old):
    token = uuid.uuid4().hex[:12]
    notebook = write_notebook(panel_lab.root_dir / f"panel-{token}.ipynb", SETUP_CELL,
                              BUILD_CELL.format(busybox=BUSYBOX, token=token))
    build = row(f"{notebook.name}: app")

    facts = drive_panel(
        panel_lab, notebook, screenshot="lab-panel-end", wait_for=[CURRENT, STATE, build],
        steps=[{"click": STATE_TOGGLE, "wait": DAG_NODES, "shot": "lab-panel",
                "describe": [BUILDERS, STATE, build, DAG_NODES]},
               {"click": INSERT, "wait": NEW_CELL, "describe": [NEW_CELL]},
               # the keyboard alone opens a build's detail and goes back
               {"focus": f"{build} .envd-lab-row-open", "key": "Enter", "wait": STEPS, "shot": "lab-panel-detail",
                "describe": [STEPS, SCORES, FACTS, FOCUSED]},
               {"key": "Escape", "wait": build, "describe": [FOCUSED]},
               {"theme": "dark", "shot": "lab-panel-dark"},
               {"click": build, "wait": STEPS, "shot": "lab-panel-detail-dark"}])

    assert panel_errors(facts) == [] and facts["dialogs"] == [], (facts["pageErrors"], facts["dialogs"])
    builders = {b["data"]["name"]: b for b in shown(facts, BUILDERS, step=0)}
    assert set(builders) == {"current", "classic", "old"}, builders
    assert builders["current"]["data"]["healthy"] == "true"
    assert re.search(r"BuildKit \S+ · \d+ in flight · [\d.]+ \w?B cache", builders["current"]["text"])

    [state] = shown(facts, STATE, step=0)
    assert state["visible"] and state["text"].split("\n")[:2] == ["ok", "app"], state
    nodes = shown(facts, DAG_NODES, step=0)
    assert len(nodes) == 3 and [n["data"]["kind"] for n in nodes] == ["image", "exec", "exec"], nodes
    for name in STEP_NAMES:  # a node's text: its <title> ("make token (exec)"), then its label
        assert any(n["text"].startswith(f"{name} (exec)") for n in nodes), nodes

    [cell] = shown(facts, NEW_CELL, step=1)
    assert cell["text"].startswith("%%envd app_next --from app"), cell

    [entry] = shown(facts, build, step=0)
    # The kernel's archive entry (the daemon's own record joins it once the cell's stage is closed).
    assert entry["data"]["source"] in ("archive", "both") and entry["data"]["builder"] in builders, entry
    counts = re.search(r"(\d+) steps · (\d+) cached · (\d+) ran", entry["text"])
    assert counts and int(counts[3]) >= len(STEP_NAMES), entry

    steps = {s["text"].split("\t")[1]: s for s in shown(facts, STEPS, step=2)}
    for name in STEP_NAMES:
        assert steps[name]["data"]["state"] == "done", steps
    scores = shown(facts, SCORES, step=2)
    picked = [s["data"]["builder"] for s in scores if s["data"]["picked"] == "true"]
    assert picked and set(picked) <= set(builders) and len(scores) >= 2, scores  # the pick (and its fallbacks)
    details = [d["text"] for d in shown(facts, FACTS, step=2)]
    assert details[0] == "ok" and details[1] in picked, details
    assert [f["data"] for f in shown(facts, FOCUSED, step=2)] == [{}]  # the back button (no data-*)
    assert shown(facts, FOCUSED, step=2)[0]["label"] == "back to the list"
    [focused] = shown(facts, FOCUSED, step=3)  # back in the list, on the row it came from
    assert focused["label"].startswith(f"build {notebook.name}: app on "), focused

    for name in ("lab-panel", "lab-panel-detail", "lab-panel-detail-dark", "lab-panel-dark"):
        png = ARTIFACTS / f"{name}.png"
        assert png_size(png) == (1400, 900) and png.stat().st_size > 30_000, name
    assert facts["theme"] == "JupyterLab Dark"


PIN = ".envd-lab-detail .envd-lab-pin"
UNPIN = '.envd-lab-detail .envd-lab-pin:text-is("unpin")'
DELETE = ".envd-lab-detail .envd-lab-delete"
CONFIRM = "!.jp-Dialog .jp-mod-warn"
PINNED_MARK = ".envd-lab-pinned"
STATUS_OK = ".envd-lab-facts dd[data-fact=status]:text-is('ok')"


SOLVE_CELL = """\
from envd_jupyter import buildkit
from envd_jupyter.llb import image
client = buildkit.connect("docker+unix://{socket}")
client.solve(image("{busybox}").run("echo {token}", name="echo"), name="{name}")
client.close()"""


@pytest.mark.timeout(600)
def test_pin_and_delete_from_the_panel_reach_the_daemon_with_jupyters_credentials(panel_lab, docker_current):
    """POST and DELETE go through ServerConnection (token, XSRF): a finished build of another client
    (a plain library solve: only the daemon has it) is pinned in the list, then deleted (answered 2xx,
    the detail closes)."""
    token = uuid.uuid4().hex[:12]
    name = f"pin-{token}"
    notebook = write_notebook(panel_lab.root_dir / f"{name}.ipynb",
                              SOLVE_CELL.format(socket=docker_current, busybox=BUSYBOX, token=token, name=name))
    build = row(name)

    facts = drive_panel(
        panel_lab, notebook, screenshot="lab-panel-pin", wait_for=[build],
        steps=[{"click": build, "wait": STATUS_OK},
               {"click": PIN, "wait": UNPIN},
               {"click": ".envd-lab-back", "wait": f"{build} {PINNED_MARK}", "describe": [build]},
               {"click": build, "wait": STATUS_OK},
               {"click": DELETE, "wait": CONFIRM},
               # The server accepts the delete and the panel goes back to the list. Whether the build has
               # left the list is the server's and daemon's (BuildKit still lists a deleted record for a
               # moment, and the server's archive keeps what it listed: reported to helper server).
               {"click": CONFIRM, "wait": ".envd-lab-history-row",
                "describe": [".envd-lab-error", ".envd-lab-back"]}])

    assert panel_errors(facts) == [] and facts["dialogs"] == [], (facts["pageErrors"], facts["dialogs"])
    [pinned] = shown(facts, build, step=2)
    assert "pinned" in pinned["text"].split("\n"), pinned
    # The server's answers say where each change landed: on the daemon (a plain library solve is only
    # there; the row itself may come from the server's archive copy when a busy daemon's listing is slow).
    pins = [c for c in facts["changes"] if c["method"] == "POST" and c["path"].endswith("/pin")]
    deletes = [c for c in facts["changes"] if c["method"] == "DELETE"]
    assert [(c["status"], c["body"]["pinned"], c["body"]["daemon"]) for c in pins] == [(200, True, True)], pins
    assert [(c["status"], c["body"]["daemon"]) for c in deletes] == [(200, True)], deletes
    assert shown(facts, ".envd-lab-error", step=5) == []  # the DELETE was answered 2xx
    assert [back["visible"] for back in shown(facts, ".envd-lab-back", step=5)] == [False]  # detail closed


SLOW_CELL = """\
%%envd slow --background
llb.image("{busybox}").run("sleep 15; echo '{token}' > /token", name="sleep 15")"""
LIVE = '.envd-lab-live[data-connected="true"]'


def named(name: str, status: str) -> str:
    return f'.envd-lab-history-row[data-status="{status}"]:has(.envd-lab-row-name:text-is("{name}"))'


@pytest.mark.timeout(600)
def test_a_build_running_behind_the_notebook_turns_ok_in_the_open_panel(panel_lab, docker_current):
    """The row appears while the build runs and turns "ok" from the server's event stream, without a reload.

    The kernel names the daemon as the server's fleet does ("current"): the history joins the daemon's
    record and the kernel's archive entry on builder name and ref."""
    token = uuid.uuid4().hex[:12]
    setup = f'%load_ext envd_jupyter\n%config Envd.builders = {{"current": "docker+unix://{docker_current}"}}'
    notebook = write_notebook(panel_lab.root_dir / f"live-{token}.ipynb", setup,
                              SLOW_CELL.format(busybox=BUSYBOX, token=token))
    name = f"{notebook.name}: slow"

    facts = drive_panel(
        panel_lab, notebook, screenshot="lab-panel-live", wait_for=[named(name, "running"), LIVE],
        steps=[{"wait": named(name, "ok"), "describe": [named(name, "ok"), named(name, "running"), LIVE,
                                                        '.envd-lab-state[data-name="slow"]']}])

    assert panel_errors(facts) == [] and facts["dialogs"] == [], (facts["pageErrors"], facts["dialogs"])
    [row] = shown(facts, named(name, "ok"), step=0)
    assert shown(facts, named(name, "running"), step=0) == []  # the same row changed, no second one
    assert len(shown(facts, LIVE, step=0)) == 1  # the socket never dropped: the change came as an event
    # the page asked for the history once on opening (and once as the socket connected), not again
    assert len(facts["timings"]["historyRequestsMs"]) <= 2, facts["timings"]
    [state] = shown(facts, '.envd-lab-state[data-name="slow"]', step=0)
    assert state["data"]["status"] in ("running", "ok"), state
