"""What a ``%%envd`` cell shows once its solve has ended, and where a background build's output goes."""

from __future__ import annotations

import contextvars

import pytest
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter import buildkit, llb
from envd_jupyter.notebook._view import BuildView


def completed(digest: str, name: str, index: int) -> buildkit.VertexEvent:
    vertex = buildkit.VertexState(digest=digest, index=index, name=name, started=10.0, completed=10.5)
    return buildkit.VertexEvent(kind="completed", vertex=vertex)


class SolveFailed(Exception):
    """A failure carrying the solve's final model, as the library's SolveError does."""

    def __init__(self, model: dict):
        super().__init__("step failed")
        self.model = model


FINAL = {"version": 1, "total": 1, "cached": 0, "ran": 1, "failed": 0, "done": True,
         "vertices": [completed("sha256:hi", "hi", 1).vertex.to_dict()]}


def ended_view(mode: str) -> BuildView:
    """A view whose solve saw one step and then ended (with a failure carrying the final model)."""
    definition = llb.image("envd-jupyter/busybox:latest").run("echo hi", name="hi").marshal()
    view = BuildView("app", definition, collapse=12, mode=mode)
    view.on_event(completed("sha256:hi", "hi", 1))
    view.failed(SolveFailed(FINAL))
    return view


def test_events_after_the_solve_ended_print_no_plain_lines(capsys):
    # An open stage's Status stream goes on: reading a merged result reports the merge again.
    view = ended_view("plain")
    assert "#1 hi" in capsys.readouterr().out

    view.on_event(completed("sha256:merge", "merging", 2))

    assert capsys.readouterr().out == ""


def test_events_after_the_solve_ended_leave_the_live_progress_alone():
    view = ended_view("widget")

    view.on_event(completed("sha256:merge", "merging", 2))

    view._progress.flush()
    assert [v["digest"] for v in view._progress.vertices] == ["sha256:hi"]
    assert view._progress.summary["ran"] == 1


@pytest.fixture
def envd_magics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "envd_jupyter")
    yield shell.magics_manager.registry["Envd"]
    shell.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


def test_a_background_build_runs_in_the_context_of_the_cell_that_started_it(envd_magics):
    """ipykernel routes a thread's displays by the parent header in its context: a background
    build's scores, progress and summary then land under its own cell, not the one running then."""
    cell = contextvars.ContextVar("cell")
    cell.set("the --background cell")
    future = envd_magics._in_background(cell.get)
    assert future.result(timeout=30) == "the --background cell"
