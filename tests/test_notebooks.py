"""Every tutorial notebook runs top to bottom against the real daemons, and keeps what matters in its outputs."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXECUTED = ROOT / "build" / "notebooks"
SUMMARY_MIME = "application/vnd.envd-jupyter.summary+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_there_are_tutorial_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


def run_notebook(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/run-notebooks"), str(notebook)],
                          capture_output=True, text=True, timeout=1150)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, daemon_env):
    result = run_notebook(notebook)
    assert result.returncode == 0, result.stdout + result.stderr
    if notebook.name == "01-getting-started.ipynb":
        check_getting_started(nbformat.read(EXECUTED / notebook.name, as_version=4), result.stdout)
    if notebook.name == "02-envd-environments.ipynb":
        check_envd_environments(nbformat.read(EXECUTED / notebook.name, as_version=4))
    if notebook.name == "04-debugging-builds.ipynb":
        check_debugging_builds(nbformat.read(EXECUTED / notebook.name, as_version=4))
    if notebook.name == "03-scheduling-across-builders.ipynb":
        check_scheduling_across_builders(nbformat.read(EXECUTED / notebook.name, as_version=4))


def outputs_of(cell) -> list:
    return [o for o in cell.get("outputs", ()) if o.output_type in ("display_data", "execute_result", "error")]


def check_getting_started(nb, printed: str) -> None:
    """Headless outputs hold the final DAG (SVG), the scores table, the summaries and the failure summary."""
    envd_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%envd")]
    assert len(envd_cells) == 4
    for cell in envd_cells:
        for output in outputs_of(cell):
            if output.output_type != "error":
                assert "text/plain" in output.data and WIDGET_VIEW not in output.data  # static, not a dead view
    first = envd_cells[0]
    html = "".join(o.data.get("text/html", "") for o in outputs_of(first) if o.output_type != "error")
    assert "<svg" in html and ('data-state="done"' in html or 'data-state="cached"' in html)
    assert "caps-filter" in html  # the scores table names the filter that removed the daemons without diffop
    summaries = [o.data[SUMMARY_MIME] for c in nb.cells for o in outputs_of(c)
                 if o.output_type != "error" and SUMMARY_MIME in o.data]
    solved = {s["state"] for s in summaries if "ran" in s}
    assert {"app", "report"} <= solved and any(s.get("export") for s in summaries)
    assert all(s["builder"] == "current" for s in summaries if "ran" in s)  # only it has MergeOp and DiffOp
    [error] = [o for o in outputs_of(envd_cells[-1]) if o.output_type == "error"]
    shown = "\n".join(error.traceback)
    assert "SolveError: step 'compile' (cell[" in shown and "exit code 3" in shown and "missing header" in shown
    assert "Traceback" not in shown and len(error.traceback) <= 12
    why = next(c for c in nb.cells if c.source.startswith("%envd_why"))
    assert "install tools" in why.outputs[0].data["text/plain"]
    run = next(c for c in nb.cells if "docker" in c.source and "subprocess" in c.source)
    assert "tool v2" in "".join(o.get("text", "") for o in run.outputs)
    assert "app: " in printed and "exported as image=" in printed


def plain(cell) -> str:
    return "\n".join(o.data.get("text/plain", "") for o in outputs_of(cell) if o.output_type != "error")


def check_envd_environments(nb) -> None:
    """A build.envd in Starlark cells: parallel branches, one changed pip group re-run, why, a cog.yaml."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    first, second = [c for c in cells if c.source.startswith("%%envd dev --lang starlark")]
    summaries = [o.data[SUMMARY_MIME] for o in outputs_of(second) if SUMMARY_MIME in o.get("data", {})]
    assert [(s["ran"], s["cached"]) for s in summaries] == [(4, 6)]  # greeting's branch, its diff, the merge, run
    dag = plain(first)
    for step in ("[envd] apt-get install tree", "[envd] python 3.11 venv", "[envd] pip install greeting==1.0",
                 "[envd] pip install palette"):
        assert step in dag, step
    assert "cached   exec   [envd] pip install palette" in plain(second)
    versions = [plain(c) for c in cells if c.source == "%envd_cat dev /versions"]
    assert versions == ["1.0 1.0", "2.0 1.0"]
    why = plain(next(c for c in cells if c.source == "%envd_why dev"))
    assert "argv changed" in why and "greeting==2.0" in why and "cell[dev]:9" in why
    broken = next(c for c in cells if c.source.startswith("%%envd broken"))
    shown = "".join(o.get("text", "") for o in broken.outputs) + "".join("".join(o.get("traceback", []))
                                                                         for o in broken.outputs)
    assert "cell[broken]:3: install.apt_packages: for parameter name: got string, want list" in shown
    serving = plain(next(c for c in cells if c.source.startswith("%%envd serving")))
    assert "cached   exec   [envd] apt-get install tree" in serving  # cog's jq group joined dev's apt chain
    assert "exec   [envd] apt-get install jq  ← 3" in serving  # ... on top of tree (op 3), cached by earlier runs
    assert "predict.py" in plain(next(c for c in cells if c.source == "%envd_ls serving /src/.envd"))
    assert plain(next(c for c in cells if c.source == "%envd_cat serving /jq-version")).startswith("jq-")


def streamed(cell, name: str) -> str:
    return "".join(o.text for o in cell.get("outputs", ()) if o.output_type == "stream" and o.name == name)


def returned(cell) -> str:
    """The ``text/plain`` of what a line magic returned (not what it displayed on the way)."""
    [result] = [o for o in cell.get("outputs", ()) if o.output_type == "execute_result"]
    return result.data["text/plain"]


def failure_of(cell) -> list[str]:
    """The traceback lines of the one error a cell tagged ``raises-exception`` ended with."""
    assert "raises-exception" in cell.metadata.get("tags", [])
    [error] = [o for o in outputs_of(cell) if o.output_type == "error"]
    return error.traceback


def check_debugging_builds(nb) -> None:
    """Failure view, a command in the failed step's filesystem, a breakpoint, Next/Continue, one step's log."""
    cells = [c for c in nb.cells if c.cell_type == "code"]

    def cell(source: str):
        [found] = [c for c in cells if c.source == source]
        return found

    configure_log = ["checking for cat... yes", "checking for cp... yes", "checking for grep... yes",
                     "checking for include/config.h... no", "checking for sh... yes",
                     "configure: error: include/config.h not found (see /src/config.log)"]
    failing = [c for c in cells if "raises-exception" in c.metadata.get("tags", [])]
    for name, failure in zip(("app", "app_old"), map(failure_of, failing), strict=True):
        assert failure[0] == f"SolveError: step '[user] sh /src/configure' (cell[{name}]:3) failed with exit code 1"
        # the last log lines, sorted: the daemon reads stdout and stderr apart, so their order may vary
        assert sorted(failure[1:]) == [f"  | {line}" for line in configure_log]
    assert "app: showing the filesystem before the failed step '[user] sh /src/configure'" in plain(failing[0])
    # one failure output: dockerd 26 shows the files as the failed step saw them, 20.10 the state before it
    step = "'[user] sh /src/configure'"
    assert f"app: build failed\n✗ step {step} failed with exit code 1 (cell[app]:3)" in plain(failing[0])
    assert f"Files below: as the failed step {step} saw them when it failed" in plain(failing[0])
    assert f"Files below: the filesystem before the failed step {step} (the daemon did not report" in plain(failing[1])

    before = returned(cell("%envd_ls app /src"))
    assert "showing the filesystem before the failed step" in before and "configure" in before
    assert "config.log" not in before  # the failing command wrote it: only its own filesystem has it
    own = cell("%envd_exec app -- cat /src/config.log")
    assert "own filesystem, as it was when it failed" in streamed(own, "stderr")
    assert "checking for include/config.h... no\nconfigure: include/ holds: " in streamed(own, "stdout")
    assert returned(own) == "exit code 0"
    assert returned(cell("%envd_exec app -- ls /src/include")) == "exit code 1"
    assert sorted(returned(cell("%envd_logs app configure")).splitlines()) == configure_log

    steps = [returned(c) for c in cells if c.source.startswith("%envd_step app")]
    assert [s.split(" — ")[0].removesuffix(" (cached)") for s in steps] == [  # cached once the notebook ran
        "app: paused at step 1/7: image envd-jupyter/busybox:latest",
        "app: paused at step 2/7: local context",
        "app: paused at breakpoint step 5/7: [user] sh /src/configure",  # --continue: breakpoint() in the cell
        "app: paused at step 6/7: [user] sh /src/build.sh",
        "app: paused at step 7/7: [user] grep -q GREETING /src/app"]
    assert steps[-1].endswith("the last step; the stage stays open")
    assert returned(cell("%envd_cat app /src/config.log")).endswith("checking for include/config.h... yes")
    paused_files = streamed(cell("%envd_exec app -- ls /src"), "stdout").split()
    assert "config.log" in paused_files and "app" not in paused_files  # build.sh has not run at the breakpoint
    assert returned(cell("%envd_cat app /src/test-report.txt")) == "test: /src/app has the greeting"

    old = cell("%envd_exec app_old -- sh -c 'ls /src; cat /src/config.log'")
    assert "app_old: showing the filesystem before the failed step" in streamed(old, "stderr")
    assert streamed(old, "stdout").split() == ["build.sh", "configure", "main.c"]
    assert "can't open '/src/config.log'" in streamed(old, "stderr") and returned(old) == "exit code 1"


def check_scheduling_across_builders(nb) -> None:
    """Two cycles per decision, a repeat build on the warm builder, a shadow's verdict, a failover that completes."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    summaries = {o.data[SUMMARY_MIME]["state"]: o.data[SUMMARY_MIME] for c in cells for o in outputs_of(c)
                 if o.output_type != "error" and SUMMARY_MIME in o.data}
    first, again = summaries["app"], summaries["app_again"]
    assert first["ran"] == 2 and again["ran"] == 0 and again["builder"] == first["builder"]
    scores = [c for c in cells if c.source == "%envd_scores"]
    repeat, shadowed = plain(scores[0]), plain(scores[1])
    assert [line.split(":")[0].strip() for line in repeat.splitlines() if ": picked" in line] == ["build", "export"]
    assert f"build: picked {first['builder']}" in repeat
    shadow_first, shadow_again = summaries["shadowed"], summaries["shadowed_again"]
    assert shadow_again["builder"] == shadow_first["builder"] and shadow_again["ran"] == 0
    assert f"affinity: picked {shadow_first['builder']}" in shadowed
    assert re.search(r"shadow load-only: picked fleet\d \((agrees|disagrees)\)", shadowed)
    failover = "".join(o.get("text", "") for o in next(c for c in cells if "SIGKILL" in c.source or "os.kill" in c.source).outputs)
    [line, done, down] = failover.strip().splitlines()
    victim = done.split()[1].rstrip(";")
    assert line.startswith(f"fleet: {victim} failed (") and "retrying on fleet" in line
    assert done.endswith("['slow step']") and f"completed on {victim}" not in done
    assert down == f"{victim} healthy: False"
    assert "down" not in plain(cells[-1]) and plain(cells[-1]).count("healthy") == 3
