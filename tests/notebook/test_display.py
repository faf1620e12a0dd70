"""The display helper: a live widget first, its static picture in the same output at the end."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets import Widget

from envd_jupyter import llb
from envd_jupyter.notebook import DAGWidget, ProgressWidget, ScoresWidget, show
from envd_jupyter.notebook._view import BuildView
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, Vertex

from ._graphs import two_branches, two_branches_model

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def published(monkeypatch):
    """Every display message the shell publishes: (data, transient, update)."""
    shell = InteractiveShell.instance()
    messages = []

    def publish(data, metadata=None, *, transient=None, update=False, **_kwargs):
        messages.append((data, transient or {}, update))

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    return messages


def test_finish_replaces_the_widget_with_its_final_static_picture(published):
    widget = DAGWidget(two_branches())
    live = show(widget)
    widget.update_model(two_branches_model())
    live.finish()
    (first, first_ids, first_update), (last, last_ids, last_update) = published
    assert WIDGET_VIEW in first and not first_update
    assert set(last) == {"text/plain", "text/html"} and last_update
    assert first_ids["display_id"] == last_ids["display_id"]
    assert 'data-id="sha256:b1" data-state="failed"' in last["text/html"]  # pushed by finish's flush
    assert "1 failed" in last["text/plain"]


def test_finish_can_keep_the_live_widget(published):
    widget = ProgressWidget()
    live = show(widget)
    widget.update_model(two_branches_model())
    live.finish(keep_widget=True)
    last, _, update = published[-1]
    assert update and set(last) == {"text/plain", "text/html", WIDGET_VIEW}
    assert last["text/plain"].startswith("Build: 8 vertices")


@pytest.fixture
def constructed(monkeypatch):
    """Our widgets constructed from now on (each one opens a comm to the front end)."""
    widgets = []
    monkeypatch.setattr(Widget, "_widget_construction_callback", widgets.append)
    return widgets


def ours(widgets) -> list[str]:
    return [type(w).__name__ for w in widgets if isinstance(w, (DAGWidget, ProgressWidget, ScoresWidget))]


def decision():
    return Scheduler(seed=1).schedule(BuildRequest([Vertex("sha256:a")]), [Endpoint("builder-a")])


def test_the_live_dag_is_kept_when_the_pick_runs_the_graph_shown(published, constructed):
    definition = llb.image("busybox").run("echo a").marshal()
    view = BuildView("app", definition, collapse=12, mode="widget")
    view.show()
    view.scheduled(decision(), llb.image("busybox").run("echo a").marshal())
    assert ours(constructed) == ["DAGWidget", "ProgressWidget", "ScoresWidget"]
    assert not any(update for _, _, update in published)


def test_the_live_dag_follows_the_graph_form_the_pick_runs(published, constructed):
    view = BuildView("app", llb.image("busybox").run("echo a").marshal(), collapse=12, mode="widget")
    view.show()
    lowered = llb.image("busybox").run("echo b").marshal()
    view.scheduled(decision(), lowered)
    first, second = [w for w in constructed if isinstance(w, DAGWidget)]
    (shown, shown_ids, _), (replaced, replaced_ids, update) = published[0], published[1]
    assert update and replaced_ids["display_id"] == shown_ids["display_id"]
    assert shown[WIDGET_VIEW]["model_id"] == first.model_id and replaced[WIDGET_VIEW]["model_id"] == second.model_id
    assert "echo b" in replaced["text/plain"] and "echo a" in shown["text/plain"]


@pytest.mark.parametrize("mode", ["none", "plain"])
def test_views_without_widgets_open_no_comms_and_show_static_pictures(published, constructed, mode, capsys):
    definition = llb.image("busybox").run("echo a").marshal()
    view = BuildView("app", definition, collapse=12, mode=mode)
    view.show()
    view.scheduled(decision(), definition)
    view.failed(RuntimeError("no model"))
    assert constructed == []
    texts = [data["text/plain"] for data, _, _ in published]
    assert texts[0].startswith("DAG: 2 vertices") and "echo a" in texts[0]
    assert texts[1].startswith("Scheduled on builder-a")
    assert all(WIDGET_VIEW not in data for data, _, _ in published)
