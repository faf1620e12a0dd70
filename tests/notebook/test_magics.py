"""Every magic in a real IPython shell against the real daemons: success, --from, re-runs, errors, interrupt."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
import uuid

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter import buildkit, llb
from envd_jupyter.notebook import Envd

BUSYBOX = "envd-jupyter/busybox:latest"


@pytest.fixture
def shell(docker_current, tmp_path, monkeypatch):
    """A fresh IPython shell with the extension loaded and one builder configured."""
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    ip.run_line_magic("config", f'Envd.builder = "docker+unix://{docker_current}"')
    ip.user_ns["BUSYBOX"] = BUSYBOX
    yield ip
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


def envd(ip, line: str, body: str):
    """Run a %%envd cell the way IPython runs it, raising what the user would see."""
    return ip.run_cell_magic("envd", line, body)


def magics(ip) -> Envd:
    return ip.magics_manager.registry["Envd"]


def bundle(value) -> dict:
    """What a front end receives for ``value`` (anywidget returns data and metadata)."""
    shown = value._repr_mimebundle_()
    return shown[0] if isinstance(shown, tuple) else shown


def unique() -> str:
    return uuid.uuid4().hex[:12]


def test_a_cell_binds_its_state_solves_it_and_leaves_it_open_for_reading(shell, capsys):
    token = unique()
    envd(shell, "app", f'llb.image(BUSYBOX).run("echo said-{token}; echo {token} > /token", name="write token")')
    out = capsys.readouterr().out
    assert isinstance(shell.user_ns["app"], llb.State)
    assert "app: solved on default" in out and "1 step ran" in out
    assert "write token" in out  # the plain progress lines name the step
    assert shell.run_line_magic("envd_cat", "app /token") == f"{token}\n"
    listing = shell.run_line_magic("envd_ls", "app /")
    assert "token" in [entry.path for entry in listing] and "token" in repr(listing)
    assert f"said-{token}" in shell.run_line_magic("envd_logs", "app write")


def test_from_continues_an_earlier_state_and_reruns_replace_the_cell(shell):
    token = unique()
    envd(shell, "base", f'llb.image(BUSYBOX).run("echo {token} > /base")')
    envd(shell, "app --from base", 'start.run("cat /base > /copy")')
    assert shell.run_line_magic("envd_cat", "app /copy") == f"{token}\n"
    workspace = magics(shell).workspace
    before = workspace.cell("app").definition.digests
    envd(shell, "app --from base", 'start.run("cat /base > /copy")')
    assert list(workspace.states) == ["base", "app"]
    assert workspace.cell("app").definition.digests == before


def test_why_names_the_change_and_what_reran(shell):
    envd(shell, "w", f'llb.image(BUSYBOX).run("echo one > /f", name="write f").run("echo {unique()}")')
    with pytest.raises(UsageError, match="solved once"):
        shell.run_line_magic("envd_why", "w")
    envd(shell, "w", f'llb.image(BUSYBOX).run("echo two > /f", name="write f").run("echo {unique()}")')
    report = shell.run_line_magic("envd_why", "w")
    text = bundle(report)["text/plain"]
    assert "write f" in text and "argv" in text


def test_a_rerun_closes_the_stage_it_replaces_behind_the_cell(shell, monkeypatch):
    from envd_jupyter.fleet import Stage

    closed_on = []
    real_close = Stage.close
    monkeypatch.setattr(Stage, "close", lambda stage: (closed_on.append((stage, threading.current_thread())),
                                                       real_close(stage)))
    body = f'llb.image(BUSYBOX).run("echo {unique()} > /t")'
    envd(shell, "again", body)
    first = magics(shell)._stages["again"].result()
    envd(shell, "again", body)
    deadline = time.monotonic() + 60
    while not closed_on and time.monotonic() < deadline:
        time.sleep(0.05)
    [(stage, thread)] = closed_on
    assert stage is first and thread is not threading.main_thread()
    assert shell.run_line_magic("envd_cat", "again /t").strip()  # the new stage is open


def test_no_solve_shows_the_graph_only_and_the_state_solves_when_read(shell, capsys):
    token = unique()
    envd(shell, "lazy --no-solve", f'llb.image(BUSYBOX).run("echo {token} > /t")')
    assert "solved on" not in capsys.readouterr().out
    assert shell.run_line_magic("envd_cat", "lazy /t") == f"{token}\n"


def test_background_returns_at_once_and_reading_waits_for_the_build(shell):
    token = unique()
    envd(shell, "bg --background", f'llb.image(BUSYBOX).run("sleep 1; echo {token} > /t")')
    assert shell.run_line_magic("envd_cat", "bg /t") == f"{token}\n"


def test_builders_scores_and_dag_display_with_plain_text(shell):
    envd(shell, "s", f'llb.image(BUSYBOX).run("echo {unique()}")')
    builders = bundle(shell.run_line_magic("envd_builders", ""))
    assert "default" in builders["text/plain"] and "healthy" in builders["text/plain"]
    scores = bundle(shell.run_line_magic("envd_scores", ""))
    assert {"text/plain", "text/html"} <= set(scores) and "default" in scores["text/plain"]
    cycles = [line.split(":")[0].strip() for line in scores["text/plain"].splitlines()[1:] if ": picked" in line]
    assert cycles == ["build", "export"]  # the fleet's two profiles, one cycle each
    assert "profile <b>build</b>" in scores["text/html"] and "profile <b>export</b>" in scores["text/html"]
    dag = bundle(shell.run_line_magic("envd_dag", "s"))
    assert "<svg" in dag["text/html"] and 'data-state="done"' in dag["text/html"]
    assert "done" in dag["text/plain"] and "image envd-jupyter/busybox:latest" in dag["text/plain"]


def test_export_an_image_and_run_it(shell, docker_current):
    token = unique()
    envd(shell, "img", f'llb.image(BUSYBOX).run("echo {token} > /token")')
    name = f"envd-jupyter-test/magic:{token}"
    exported = shell.run_line_magic("envd_export", f"img --image {name}")
    assert exported.builder == "default" and name in exported
    client = buildkit.connect(f"docker+unix://{docker_current}")
    try:  # run the exported image: a new build from it reads the file back
        result = client.interactive()
        with result as build:
            assert build.solve(llb.image(name)).read_file("/token") == f"{token}\n".encode()
    finally:
        client.close()


@pytest.mark.parametrize("line, body, expected", [
    ("", "x", "the following arguments are required: name"),
    ("s --bogus", "x", "unrecognized arguments: --bogus"),
    ("s --from nowhere", "start", "no state named 'nowhere'"),
    ("s", "imgae('busybox')", "NameError: name 'imgae' is not defined"),
    ("s", "x = (", "cell[s]:1"),
    ("s", "42", "last expression must give a state"),
])
def test_input_mistakes_are_one_line_usage_errors(shell, line, body, expected):
    with pytest.raises(UsageError) as caught:
        envd(shell, line, body)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_states_in_line_magics_name_the_known_ones(shell):
    envd(shell, "known --no-solve", "llb.image(BUSYBOX)")
    for magic in ("envd_ls", "envd_cat", "envd_logs", "envd_dag", "envd_why", "envd_export"):
        with pytest.raises(UsageError, match="known: known"):
            shell.run_line_magic(magic, "nope /x" if magic == "envd_cat" else "nope")


def test_a_failing_step_is_a_short_summary_naming_the_cell_line(shell, capsys):
    body = 'base = llb.image(BUSYBOX)\nbase.run("echo compiling; echo boom >&2; exit 3", name="compile")'
    result = shell.run_cell(f"%%envd broken\n{body}")
    shown = capsys.readouterr().out
    assert isinstance(result.error_in_exec, buildkit.SolveError)
    error = result.error_in_exec
    assert error.exit_code == 3 and error.location == "cell[broken]:2" and "boom" in "\n".join(error.log_tail)
    assert "SolveError: step 'compile' (cell[broken]:2) failed with exit code 3" in shown
    assert "Traceback" not in shown


def test_a_bad_builder_is_one_line(shell, tmp_path):
    with pytest.raises(UsageError):
        envd(shell, f"s --fleet {tmp_path}/absent.yaml", "llb.image(BUSYBOX)")
    result = shell.run_cell(f"%%envd s --builder unix://{tmp_path}/no.sock\nllb.image(BUSYBOX).run('true')")
    assert isinstance(result.error_in_exec, Exception)
    assert "\n" not in str(result.error_in_exec).strip() or "no.sock" in str(result.error_in_exec)


@pytest.mark.timeout(120)
def test_an_interrupt_cancels_the_solve_and_returns_the_prompt(shell, monkeypatch):
    """A real SIGINT once the RUN has started: the cell ends with SolveCancelled before the step could finish."""
    started = threading.Event()

    class Watch(io.StringIO):
        """stdout that notices the plain progress line of the sleeping step."""

        def write(self, text):
            if "/bin/sh -c sleep 60" in text:  # the progress line of the running step
                started.set()
            return super().write(text)

    def interrupt():
        if started.wait(60):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(sys, "stdout", Watch())
    threading.Thread(target=interrupt, daemon=True).start()
    began = time.monotonic()
    result = shell.run_cell(f'%%envd slow\nllb.image(BUSYBOX).run("sleep 60; echo {unique()}")')
    assert started.is_set()
    assert isinstance(result.error_in_exec, buildkit.SolveCancelled), repr(result.error_in_exec)
    assert time.monotonic() - began < 50  # the 60 s step did not run to its end
    envd(shell, "after", f'llb.image(BUSYBOX).run("echo {unique()}")')  # the shell builds on


@pytest.mark.parametrize("flavour", ["docker_current", "docker_classic", "docker_old"])
def test_exec_streams_output_returns_the_exit_code_and_changes_nothing(flavour, shell, capsys, request):
    address = f"docker+unix://{request.getfixturevalue(flavour)}"
    token = unique()
    envd(shell, f"app --builder {address}", f'llb.image(BUSYBOX).run("echo {token} > /token")')
    capsys.readouterr()
    code = shell.run_line_magic(
        "envd_exec", f"app --workdir /tmp --env WHO=me -- sh -c 'cat /token; pwd; echo $WHO >&2; touch /new; exit 5'")
    shown = capsys.readouterr()
    assert code == 5 and repr(code) == "exit code 5"
    assert shown.out == f"{token}\n/tmp\n" and shown.err == "me\n"
    assert "new" not in [entry.path for entry in shell.run_line_magic("envd_ls", "app /")]
    assert shell.run_line_magic("envd_exec", "app -- test -e /new") == 1


@pytest.mark.parametrize("line, expected", [
    ("app ls", "the command follows --"),
    ("-- ls", "usage"),
    ("app --", "usage"),
    ("app --shell bash -- ls", "unexpected '--shell'"),
    ("app --env NOEQUALS -- ls", "expected KEY=VALUE"),
])
def test_exec_usage_mistakes_are_one_line(shell, line, expected):
    with pytest.raises(UsageError, match=expected):
        shell.run_line_magic("envd_exec", line)


@pytest.mark.timeout(120)
def test_an_interrupted_exec_is_killed_and_the_stage_stays_open(shell, monkeypatch):
    """A real SIGINT once the command printed: one short line, its process gone, the stage still usable."""
    marker = f"exec-sigint-{unique()}"
    running = threading.Event()

    class Watch(io.StringIO):
        def write(self, text):
            if "running" in text:
                running.set()
            return super().write(text)

    def interrupt():
        if running.wait(60):
            os.kill(os.getpid(), signal.SIGINT)

    envd(shell, "box", f'llb.image(BUSYBOX).run("echo {unique()} > /id")')
    monkeypatch.setattr(sys, "stdout", Watch())
    threading.Thread(target=interrupt, daemon=True).start()
    result = shell.run_cell(f"%envd_exec box -- sh -c 'echo running; sleep 4242; echo {marker}'")
    assert running.is_set()
    assert isinstance(result.error_in_exec, buildkit.ExecError), repr(result.error_in_exec)
    assert str(result.error_in_exec).startswith("interrupted: sh -c") and "box is unchanged" in str(result.error_in_exec)
    deadline = time.monotonic() + 30
    while _running(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(marker), "the interrupted command's process is gone"
    assert shell.run_line_magic("envd_exec", "box -- true") == 0


def _running(marker: str) -> bool:
    from pathlib import Path

    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def test_after_a_failed_step_the_magics_read_the_filesystem_before_it(shell, capsys):
    token = unique()
    body = (f'prepared = llb.image(BUSYBOX).run("echo {token} > /prepared", name="prepare")\n'
            'prepared.workdir("/tmp").run("touch /half-done; echo boom >&2; exit 3", name="compile")')
    result = shell.run_cell(f"%%envd broken\n{body}")
    shown = capsys.readouterr()
    assert isinstance(result.error_in_exec, buildkit.SolveError) and result.error_in_exec.exit_code == 3
    assert "broken: showing the filesystem before the failed step 'compile'" in shown.out
    assert "SolveError: step 'compile' (cell[broken]:2) failed with exit code 3" in shown.out

    assert shell.run_line_magic("envd_cat", "broken /prepared") == f"{token}\n"
    listing = shell.run_line_magic("envd_ls", "broken /")
    assert "prepared" in [e.path for e in listing] and "half-done" not in [e.path for e in listing]
    assert "showing the filesystem before the failed step 'compile'" in repr(listing)
    assert shell.run_line_magic("envd_exec", "broken -- sh -c 'pwd; cat /prepared; ls /half-done'") == 0
    shown = capsys.readouterr()  # dockerd 26 reports the failed step's filesystem: the file it made is there
    assert shown.out == f"/tmp\n{token}\n/half-done\n"
    assert "broken: running in the failed step 'compile''s own filesystem, as it was when it failed" in shown.err
    assert "boom" in shell.run_line_magic("envd_logs", "broken compile")


def test_step_through_a_state_next_continue_to_a_breakpoint_and_read_each_pause(shell):
    token = unique()
    body = (f'llb.image(BUSYBOX).run("echo {token} > /one", name="one").run("echo 2 > /two", name="two")'
            '.run("echo 3 > /three", name="three").run("echo 4 > /four", name="four")')
    envd(shell, "walk --no-solve", body)
    assert str(shell.run_line_magic("envd_step", "walk")).startswith("walk: paused at step 1/5: image ")
    after_next = shell.run_line_magic("envd_step", "walk")
    assert "paused at step 2/5: one" in after_next and "at breakpoint" not in after_next
    assert shell.run_line_magic("envd_cat", "walk /one") == f"{token}\n"
    assert "two" not in [entry.path for entry in shell.run_line_magic("envd_ls", "walk /")]

    paused = shell.run_line_magic("envd_step", "walk --break three --continue")
    assert "paused at breakpoint step 4/5: three" in paused
    assert shell.run_line_magic("envd_exec", "walk -- test -e /four") == 1
    assert shell.run_line_magic("envd_exec", "walk -- test -e /three") == 0

    assert "step 5/5: four — the last step" in shell.run_line_magic("envd_step", "walk --continue")
    assert shell.run_line_magic("envd_cat", "walk /four") == "4\n"
    with pytest.raises(UsageError, match="not being stepped"):
        shell.run_line_magic("envd_step", "walk --stop")


def test_stop_ends_a_stepped_build_and_the_state_solves_again_when_read(shell):
    envd(shell, "halt --no-solve", f'llb.image(BUSYBOX).run("echo {unique()} > /a", name="a").run("echo b > /b")')
    shell.run_line_magic("envd_step", "halt")
    assert "stopped stepping" in shell.run_line_magic("envd_step", "halt --stop")
    assert shell.run_line_magic("envd_cat", "halt /b") == "b\n"  # read: the whole state is solved


def test_the_network_setting_reaches_the_workspace_and_the_solve_options(shell):
    shell.run_line_magic("config", 'Envd.network = "host"')
    envd(shell, "net --no-solve", 'image(BUSYBOX).run("true")')
    cell = magics(shell).workspace.cell("net")
    assert cell.network == "host" and cell.solve_options()["entitlements"] == ["network.host"]
    shell.run_line_magic("config", 'Envd.network = ""')
    assert magics(shell).workspace.network is None
