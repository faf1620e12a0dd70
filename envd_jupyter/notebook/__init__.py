"""Notebook layer: DAG layout, static SVG/HTML pictures and anywidget widgets over a build's graph and events."""

from ._browse import FILE_CAP
from ._display import LiveDisplay, show
from ._layout import layout_graph
from ._svg import STATE_STYLES, dag_html, dag_text, render_svg
from ._tables import progress_html, progress_text, scores_html, scores_text
from ._widgets import BrowserWidget, DAGWidget, ProgressWidget, ScoresWidget

__all__ = [
    "FILE_CAP", "STATE_STYLES", "BrowserWidget", "DAGWidget", "LiveDisplay", "ProgressWidget", "ScoresWidget",
    "dag_html", "dag_text", "layout_graph", "progress_html", "progress_text", "render_svg", "scores_html",
    "scores_text", "show",
]
