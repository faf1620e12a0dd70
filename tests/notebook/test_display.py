"""The display helper: a live widget first, its static picture in the same output at the end."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter.notebook import DAGWidget, ProgressWidget, show

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
