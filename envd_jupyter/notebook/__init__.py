"""The notebook layer: ``%%envd`` cell magics and the widgets they display.

A thin skin: each magic parses its arguments, calls one library function (``lang.Workspace``,
``fleet.Fleet``, ``buildkit``) and displays the result. The widgets (DAG, progress, scores, result
browser) and their static pictures are usable on their own; every display carries ``text/plain``
and static HTML/SVG, so notebooks executed headless keep what matters.
"""

from ._browse import FILE_CAP
from ._display import LiveDisplay, show
from ._layout import layout_graph
from ._magics import Envd
from ._svg import STATE_STYLES, dag_html, dag_text, render_svg
from ._tables import progress_html, progress_text, scores_html, scores_text
from ._widgets import BrowserWidget, DAGWidget, ProgressWidget, ScoresWidget


def load_ipython_extension(ipython) -> None:
    if "Envd" not in ipython.magics_manager.registry:
        magics = Envd(shell=ipython)
        ipython.register_magics(magics)
        magics.panel.register(ipython)  # comm target envd-jupyter-panel, when there is a kernel


def unload_ipython_extension(ipython) -> None:
    magics = ipython.magics_manager.registry.get("Envd")
    if magics is not None:
        magics.close()
        del ipython.magics_manager.registry["Envd"]


__all__ = [
    "FILE_CAP", "STATE_STYLES", "BrowserWidget", "DAGWidget", "Envd", "LiveDisplay", "ProgressWidget",
    "ScoresWidget", "dag_html", "dag_text", "layout_graph", "load_ipython_extension", "progress_html",
    "progress_text", "render_svg", "scores_html", "scores_text", "show", "unload_ipython_extension",
]
