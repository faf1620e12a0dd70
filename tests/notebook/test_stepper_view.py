"""The stepper widget's kernel side against the real daemons: its buttons' messages drive the stepped build.

Each stepping test sends the widget the message its button sends (a comm ``custom`` message, as the
front end does), waits (bounded) for the step the handler started on its own thread, and checks what
the widgets now hold: the position, the DAG's marks and colours, the reasons beside it, the browser.
The last test checks the reasons a re-run ``%%envd`` cell shows beside its DAG.
"""

from __future__ import annotations

import uuid

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter import buildkit
from envd_jupyter.notebook import _magics
from envd_jupyter.notebook._stepper_view import Stepping

BUSYBOX = "envd-jupyter/busybox:latest"
STEP_WAIT_S = 120  # one step on a loaded 2-core machine; the wait ends as soon as the step does


def live_shell(socket: str, tmp_path, monkeypatch):
    """A shell whose magics believe they run in a kernel a Jupyter server started (live widgets)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "stepper.ipynb"))
    monkeypatch.setattr(_magics, "_in_jupyter_kernel", lambda shell: True)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    ip.run_line_magic("config", f'Envd.builder = "docker+unix://{socket}"')
    ip.user_ns["BUSYBOX"] = BUSYBOX
    yield ip
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


@pytest.fixture
def shell(docker_current, tmp_path, monkeypatch):
    yield from live_shell(docker_current, tmp_path, monkeypatch)


@pytest.fixture
def any_shell(any_daemon, tmp_path, monkeypatch):
    """The same on each daemon flavour (dockerd 26 containerd store and classic, dockerd 20.10)."""
    yield from live_shell(any_daemon, tmp_path, monkeypatch)


def press(stepping: Stepping, button: str) -> None:
    """What the front end sends when a button is clicked, then the (bounded) wait for its step."""
    stepping.stepper._handle_msg({"content": {"data": {"method": "custom", "content": {"type": button}}},
                                  "buffers": []})
    assert stepping.wait(STEP_WAIT_S), f"{button}: the step did not finish in {STEP_WAIT_S}s"


def branching(token: str) -> str:
    return (f'base = llb.image(BUSYBOX)\n'
            f'left = base.run("echo {token} > /left", name="left")\n'
            f'right = base.run("echo {token} > /right", name="right")\n'
            f'joined = left.run("cp /r/right /joined", name="join", mounts=[llb.bind_mount("/r", right)])\n'
            f'joined.breakpoint().run("echo done > /done", name="finish")')


def stepping_of(ip, name: str) -> Stepping:
    return ip.magics_manager.registry["Envd"]._steppers[name]


def root_names(stepping: Stepping) -> set[str]:
    return {entry["name"] for entry in stepping.browser.listings["/"]["entries"]}


def test_next_through_the_widget_walks_a_branching_graph_in_dependency_order(any_shell):
    shell = any_shell
    token = uuid.uuid4().hex[:12]
    shell.run_cell_magic("envd", "walk --no-solve", branching(token))
    assert shell.run_line_magic("envd_step", "walk") is None  # the live stepper says where it is
    stepping = stepping_of(shell, "walk")
    assert stepping.stepper.status == "paused" and stepping.stepper.position["index"] == 1
    by_digest = {vertex.digest: vertex for vertex in stepping.stepped.stepper.vertices}
    [join] = [d for d, v in by_digest.items() if v.name == "join"]
    assert stepping.dag.marks["breakpoints"] == [join]  # marked in the graph by .breakpoint()

    solved = [stepping.stepper.position["digest"]]
    for _ in range(3):
        press(stepping, "next")
        at = stepping.stepper.position
        assert stepping.stepper.status == "paused" and at["index"] == len(solved) + 1
        assert set(by_digest[at["digest"]].inputs) <= set(solved)  # its inputs were solved at earlier pauses
        solved.append(at["digest"])
        assert stepping.dag.marks["current"] == at["digest"]
        states = {d: stepping.dag.vertices.get(d, {}).get("state", "pending") for d in by_digest}
        assert all(states[d] in ("done", "cached") for d in solved), states
        assert all(states[d] == "pending" for d in by_digest if d not in solved), states
        assert [row["digest"] for row in stepping.browser.logs] == [at["digest"]]  # that step's logs
    assert [by_digest[d].name for d in solved[1:3]] in (["left", "right"], ["right", "left"])
    assert by_digest[solved[3]].name == "join" and {"left", "joined"} <= root_names(stepping)
    assert shell.run_line_magic("envd_cat", "walk /joined") == f"{token}\n"  # the pause is the state's stage

    press(stepping, "continue")
    assert stepping.stepper.status == "done" and stepping.stepper.position["name"] == "finish"
    assert "done" in root_names(stepping) and "walk" not in shell.magics_manager.registry["Envd"]._steppers
    rows = {row["name"]: row for row in stepping.dag.reasons}
    assert rows["finish"]["status"] == "ran" and rows["finish"]["reason"].startswith("first solve")
    bundle = stepping.box._repr_mimebundle_()
    assert "◀ paused here" in bundle["text/plain"] and 'data-paused="true"' in bundle["text/html"]
    assert "stepper walk: done: step 5/5: finish" in bundle["text/plain"]


def test_continue_stops_at_the_breakpoint_and_reasons_name_the_first_change(shell):
    token = uuid.uuid4().hex[:12]
    shell.run_cell_magic("envd", "walk", branching(token))  # solved once: the previous solve
    shell.run_cell_magic("envd", "walk --no-solve", branching(token).replace('"echo done', '"echo again'))
    shell.run_line_magic("envd_step", "walk")
    stepping = stepping_of(shell, "walk")
    press(stepping, "continue")
    assert stepping.stepper.status == "paused" and stepping.stepper.position["name"] == "join"
    assert {row["status"] for row in stepping.dag.reasons} == {"cached"}  # nothing before the change ran
    press(stepping, "continue")
    rows = {row["name"]: row for row in stepping.dag.reasons}
    assert rows["finish"]["status"] == "ran", rows
    assert rows["finish"]["reason"].startswith("argv changed"), rows["finish"]
    assert "again" in rows["finish"]["reason"]


def test_a_failing_step_shows_the_failure_view_and_its_files(any_shell):
    shell = any_shell
    token = uuid.uuid4().hex[:12]
    shell.run_cell_magic("envd", "broken --no-solve",
                         f'llb.image(BUSYBOX).run("echo {token} > /prepared", name="prepare")'
                         f'.run("echo half > /half-done; echo boom-{token}; exit 3", name="compile")')
    shell.run_line_magic("envd_step", "broken")
    stepping = stepping_of(shell, "broken")
    press(stepping, "continue")  # the button keeps working: the failure is shown, not raised into the kernel
    widget = stepping.stepper
    assert widget.status == "failed" and widget.position["name"] == "compile"
    assert widget.failure["step"] == "compile" and widget.failure["exit_code"] == 3
    assert widget.failure["location"] == "cell[broken]:1" and f"boom-{token}" in widget.failure["log_tail"]
    # dockerd 26 reports the failed step's mounts: the browser shows its files as it saw them; 20.10 none
    own = bool(stepping.stage.failure.mounts)
    assert widget.failure["shown"] == ("own" if own else "before")
    assert "broken: showing the filesystem before the failed step 'compile'" in widget.failure["note"]  # ls, cat
    failed = stepping.stepped.stepper.vertices[-1].digest
    assert stepping.dag.marks["current"] == failed and stepping.dag.vertices[failed]["state"] == "failed"
    assert "prepared" in root_names(stepping) and ("half-done" in root_names(stepping)) == own
    assert stepping.browser.title == ("broken: files of the failed step 'compile', as they were when it failed"
                                      if own else "broken: the filesystem before the failed step 'compile'")
    assert {row["name"]: row["status"] for row in stepping.dag.reasons}["compile"] == "failed"
    # The failure stage is the state's stage: the magics read it, exec runs over the failed step's mounts.
    assert shell.run_line_magic("envd_cat", "broken /prepared") == f"{token}\n"
    assert shell.run_line_magic("envd_exec", "broken -- cat /half-done") == (0 if own else 1)
    bundle = stepping.box._repr_mimebundle_()
    assert "✗ step 'compile' failed with exit code 3" in bundle["text/plain"]
    assert "class='envd-failure'" in bundle["text/html"] and "compile  ← 2  ◀ failed here" in bundle["text/plain"]
    press(stepping, "next")  # ended: a late click changes nothing
    assert widget.status == "failed"


def test_stop_cancels_a_running_step_without_holding_the_kernel(shell):
    shell.run_cell_magic("envd", "slow --no-solve",
                         f'llb.image(BUSYBOX).run("sleep 60; echo {uuid.uuid4().hex} > /late", name="sleep")')
    shell.run_line_magic("envd_step", "slow")
    stepping = stepping_of(shell, "slow")
    stepping.stepper._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "next"}}},
                                  "buffers": []})
    assert stepping.stepper.status == "running"  # the handler returned while the step runs on its thread
    with pytest.raises(UsageError, match="a step is running"):
        shell.run_line_magic("envd_step", "slow")  # the line form does not start a second step meanwhile
    press(stepping, "stop")
    assert stepping.stepper.status == "stopped" and "slow" not in shell.magics_manager.registry["Envd"]._steppers
    assert stepping.stepped.build.ended and stepping.stage.closed  # the build and its last pause are gone
    assert stepping.stepped.stepper.position == 1  # the cancelled step never paused


def test_after_a_re_run_the_dag_lists_beside_it_why_each_step_ran(shell, capsys):
    token = uuid.uuid4().hex[:12]
    body = (f'llb.image(BUSYBOX).run("echo {token} > /a", name="make a")'
            f'.run("cat /a > /b", name="copy a").run("echo {{}} > /c", name="write c")')
    shell.run_cell_magic("envd", "app", body.format("one"))
    first = capsys.readouterr().out
    assert "rebuild reasons: 3 ran · 1 cached" in first and "ran    write c — first solve of this state" in first
    shell.run_cell_magic("envd", "app", body.format("two"))
    second = capsys.readouterr().out  # the DAG's final static picture, with the reasons beside it
    assert "rebuild reasons: 1 ran · 3 cached" in second, second
    assert "ran    write c — argv changed (argv: -['one'] +['two'])" in second, second
    assert "cached copy a" in second
    with pytest.raises(buildkit.SolveError):  # a failed solve says why its steps ran too
        shell.run_cell_magic("envd", "app", body.format("three; exit 5"))
    third = capsys.readouterr().out
    assert "rebuild reasons: 0 ran · 3 cached · 1 failed" in third, third
    assert "failed write c — argv changed (argv: -['two'] +['three;', 'exit', '5'])" in third, third
