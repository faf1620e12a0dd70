"""What a ``%%envd`` cell shows: the DAG at once, then live progress, the scheduling scores, the result.

Three modes: ``widget`` (a Jupyter kernel: live anywidget views under display handles), ``plain``
(terminal IPython: ``buildctl --progress=plain`` lines) and ``none``. In every mode each display
also carries ``text/plain`` and static HTML/SVG, and at the end of the solve the handles are
updated with the final pictures, so a notebook executed headless keeps the final DAG, progress,
scores and result in its saved outputs.
"""

from __future__ import annotations

import html
import os
import sys
import threading
from typing import Any

from IPython.display import display

from envd_jupyter.notebook._browse import human_size
from envd_jupyter.notebook._display import StaticBundle, show
from envd_jupyter.notebook._tables import progress_html, progress_text
from envd_jupyter.notebook._widgets import BrowserWidget, DAGWidget, ProgressWidget, ScoresWidget


# Machine-readable facts of a solve or export in the saved outputs (what scripts/run-notebooks sums up).
SUMMARY_MIME = "application/vnd.envd-jupyter.summary+json"


def keep_widgets_live() -> bool:
    """Live views stay after a solve only in a kernel a Jupyter server started (a person is looking).

    A kernel run by nbclient has no server session; there the final static pictures replace the
    views, because a saved widget view without its kernel shows only an error in JupyterLab.
    """
    return bool(os.environ.get("JPY_SESSION_NAME"))


class BuildView:
    """The displays of one ``%%envd`` cell. ``on_event`` is called from the solve's status thread."""

    def __init__(self, name: str, definition: Any, *, collapse: int, mode: str):
        from envd_jupyter import buildkit

        self.name, self.mode, self._collapse = name, mode, collapse
        self._dag = DAGWidget(definition.to_graph(), collapse=collapse)
        self._progress = ProgressWidget(title=name)
        self._scores: ScoresWidget | None = None
        self._renderer = buildkit.PlainRenderer(sys.stdout) if mode == "plain" else None
        self._coalescer = buildkit.EventCoalescer(self._deliver, max_per_second=10)
        self._shown: dict[str, Any] = {}
        self._ended = False
        self._events_lock = threading.Lock()

    # -- the cell's life ------------------------------------------------------------------------
    def show(self) -> None:
        """The graph, at once (before anything is scheduled or solved)."""
        self._shown["dag"] = self._display(self._dag)

    def graph_only(self) -> None:
        """Nothing will be solved now: the DAG is the cell's final picture."""
        shown = self._shown.get("dag")
        if shown is not None:
            shown.finish(keep_widget=keep_widgets_live())

    def scheduled(self, scheduling: Any, definition: Any) -> None:
        """The decision, with every score; the DAG follows the graph form the pick will run."""
        if definition.digests != self._dag_digests():
            self._dag = DAGWidget(definition.to_graph(), collapse=self._collapse)
            self._replace("dag", self._dag)
        self._scores = ScoresWidget(scheduling)
        if self.mode == "plain":
            print(f"{self.name}: scheduled on {scheduling.endpoint.name}")
        self._shown["scores"] = self._display(self._scores)
        if self.mode == "widget":
            self._shown["progress"] = self._display(self._progress)

    def on_event(self, event: Any) -> None:
        """Until the solve ends: an open stage's Status stream goes on (reading a merged result
        reports the merge again), and those late events must not change the final picture."""
        with self._events_lock:
            if self._ended:
                return
            if self._renderer is not None:
                self._renderer(event)
            self._coalescer(event)

    def finished(self, stage: Any) -> None:
        """Final pictures, a summary line, and a browser over the stage's files and logs."""
        self._end(stage.model)
        ran, cached = len(stage.model.ran()), len(stage.model.cached())
        summary = (f"{self.name}: solved on {stage.builder} in {stage.elapsed:.1f}s — "
                   f"{ran} step{'s' * (ran != 1)} ran, {cached} cached")
        display(StaticBundle({"text/plain": summary,
                              "text/html": f"<div class='envd-summary'><b>{html.escape(summary)}</b></div>",
                              SUMMARY_MIME: {"state": self.name, "builder": stage.builder, "ran": ran,
                                             "cached": cached, "seconds": round(stage.elapsed, 3)}}))
        if self.mode == "widget":
            browser = BrowserWidget(stage.list_dir, lambda path: stage.read_file(path, limit=256 * 1024 + 1),
                                    logs=stage.model, title=self.name)
            self._display(browser, live=keep_widgets_live())

    def failed(self, error: BaseException) -> None:
        """Final pictures of a failed or interrupted solve (the magic raises the short error itself).

        Where the filesystem before the failed step was kept open, a note says so and the browser shows it.
        """
        stage = getattr(error, "stage", None)
        self._end(stage.model if stage is not None else getattr(error, "model", None))
        if stage is None:
            return
        note = (f"{self.name}: {stage.note} — %envd_ls / %envd_cat / %envd_exec {self.name} -- CMD "
                f"work on it")
        display(StaticBundle({"text/plain": note, "text/html": f"<div class='envd-note'>{html.escape(note)}</div>"}))
        if self.mode == "widget":
            browser = BrowserWidget(stage.list_dir, lambda path: stage.read_file(path, limit=256 * 1024 + 1),
                                    logs=stage.model, title=f"{self.name} (before the failed step)")
            self._display(browser, live=keep_widgets_live())

    def exported(self, spec: str, result: Any) -> None:
        line = f"{self.name}: exported as {spec} in {result.elapsed:.1f}s"
        display(StaticBundle({"text/plain": line, "text/html": f"<div>{html.escape(line)}</div>",
                              SUMMARY_MIME: {"state": self.name, "export": spec}}))

    # -- plumbing --------------------------------------------------------------------------------
    def _deliver(self, batch: list) -> None:
        self._dag.apply_events(batch)
        self._progress.apply_events(batch)

    def _end(self, model: Any) -> None:
        with self._events_lock:
            self._ended = True
        self._coalescer.close()
        if model is not None:
            self._dag.update_model(model)
            self._progress.update_model(model)
        live = keep_widgets_live()
        for key, widget in (("dag", self._dag), ("progress", self._progress), ("scores", self._scores)):
            shown = self._shown.get(key)
            if shown is not None:
                shown.finish(keep_widget=live)
        if self.mode != "widget" and model is not None:
            display(StaticBundle({"text/plain": progress_text(model), "text/html": progress_html(model)}))

    def _dag_digests(self) -> list[str]:
        return [node["id"] for node in self._dag._graph["nodes"]]

    def _display(self, widget: Any, *, live: bool = True):
        if self.mode == "widget" and live:
            return show(widget)
        display(StaticBundle(widget.static_bundle()))
        return None

    def _replace(self, key: str, widget: Any) -> None:
        shown = self._shown.get(key)
        if shown is not None and shown.handle is not None:
            shown.widget = widget
            shown.handle.update(widget)


def dag_view(definition: Any, *, collapse: int, model: Any = None):
    """``%envd_dag``: the graph as a widget where a person is looking, else its static picture."""
    widget = DAGWidget(definition.to_graph(), collapse=collapse)
    if model is not None:
        widget.update_model(model)
        widget.flush()
    return _returned(widget)


def scores_view(scheduling: Any):
    return _returned(ScoresWidget(scheduling))


def _returned(widget: Any):
    """What a line magic returns: the live widget, or (headless) its static picture, never a dead view."""
    return widget if keep_widgets_live() else StaticBundle(widget.static_bundle())


def builders_view(infos: list) -> StaticBundle:
    """``%envd_builders``: one row per builder (version, platforms, caps, health, in-flight, cache size)."""
    rows = [(i.name, i.address, "healthy" if i.healthy else f"down: {i.error}", i.version or "?",
             ", ".join(i.platforms), str(len(i.caps)), str(i.in_flight), human_size(i.disk_bytes),
             ", ".join(c for c in ("mergeop", "diffop") if c in i.caps) or "—") for i in infos]
    header = ("builder", "address", "health", "BuildKit", "platforms", "caps", "in flight", "build cache",
              "merge/diff")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    table = ("<table class='envd-builders'><tr>" + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{cells}</table>")
    return StaticBundle({"text/plain": text, "text/html": table})


def why_view(name: str, report: Any) -> StaticBundle:
    """``%envd_why``: the first changed inputs and which steps re-ran."""
    text = f"{name}: {report}"
    return StaticBundle({"text/plain": text, "text/html": f"<pre class='envd-why'>{html.escape(text)}</pre>"})
