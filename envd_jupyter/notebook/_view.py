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
from envd_jupyter.notebook._display import BundledBox, StaticBundle, combined, show
from envd_jupyter.notebook._failure_view import (FailureWidget, failed_files, failure_bundle, failure_facts,
                                                 files_bundle, files_title)
from envd_jupyter.notebook._layout import layout_graph
from envd_jupyter.notebook._reasons import reasons_html, reasons_text, step_reasons
from envd_jupyter.notebook._svg import dag_html, dag_text
from envd_jupyter.notebook._tables import progress_html, progress_text, scores_html, scores_text
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
    """The displays of one ``%%envd`` cell. ``on_event`` is called from the solve's status thread.

    Live widgets exist only in ``widget`` mode: elsewhere nothing could draw them, so the other
    modes show the same static pictures without opening widget comms or feeding live updates.
    """

    def __init__(self, name: str, definition: Any, *, collapse: int, mode: str):
        from envd_jupyter import buildkit

        self.name, self.mode, self._collapse = name, mode, collapse
        self._live = mode == "widget"
        self._digests = definition.digests  # the graph shown, to notice when the pick runs another form
        self._definition = definition  # what is solved: the pick's form once scheduled (rebuild reasons)
        self._graph = definition.to_graph()
        self._dag = DAGWidget(self._graph, collapse=collapse) if self._live else None
        self._progress = ProgressWidget(title=name) if self._live else None
        self._scores: ScoresWidget | None = None
        self._renderer = buildkit.PlainRenderer(sys.stdout) if mode == "plain" else None
        self._coalescer = buildkit.EventCoalescer(self._deliver, max_per_second=10) if self._live else None
        self._shown: dict[str, Any] = {}
        self._ended = False
        self._events_lock = threading.Lock()

    # -- the cell's life ------------------------------------------------------------------------
    def show(self) -> None:
        """The graph, at once (before anything is scheduled or solved)."""
        if self._live:
            self._shown["dag"] = show(self._dag)
        else:
            layout = layout_graph(self._graph, collapse=self._collapse)
            display(StaticBundle({"text/plain": dag_text(layout), "text/html": dag_html(layout)}))

    def graph_only(self) -> None:
        """Nothing will be solved now: the DAG is the cell's final picture."""
        shown = self._shown.get("dag")
        if shown is not None:
            shown.finish(keep_widget=keep_widgets_live())

    def scheduled(self, scheduling: Any, definition: Any) -> None:
        """The decision, with every score; the live DAG follows the graph form the pick will run."""
        self._definition = definition
        if self._live and definition.digests != self._digests:
            self._digests = definition.digests
            self._dag = DAGWidget(definition.to_graph(), collapse=self._collapse)
            self._replace("dag", self._dag)
        if self.mode == "plain":
            print(f"{self.name}: scheduled on {scheduling.endpoint.name}")
        if self._live:
            self._scores = ScoresWidget(scheduling)
            self._shown["scores"] = show(self._scores)
            self._shown["progress"] = show(self._progress)
        else:
            display(StaticBundle({"text/plain": scores_text(scheduling), "text/html": scores_html(scheduling)}))

    def on_event(self, event: Any) -> None:
        """Until the solve ends: an open stage's Status stream goes on (reading a merged result
        reports the merge again), and those late events must not change the final picture."""
        with self._events_lock:
            if self._ended:
                return
            if self._renderer is not None:
                self._renderer(event)
            if self._coalescer is not None:
                self._coalescer(event)

    def finished(self, stage: Any, previous: Any = None) -> None:
        """Final pictures, a summary line, and a browser over the stage's files and logs.

        Beside the DAG, why each step ran: the first changed input against ``previous`` (the
        Definition last solved under this name, None for the first solve), from the solve's own
        model and lang's ``explain_rebuild`` (no extra solve).
        """
        reasons = self._explain(previous, stage.definition, stage.model)
        self._end(stage.model)
        ran, cached = len(stage.model.ran()), len(stage.model.cached())
        summary = (f"{self.name}: solved on {stage.builder} in {stage.elapsed:.1f}s — "
                   f"{ran} step{'s' * (ran != 1)} ran, {cached} cached")
        display(StaticBundle({"text/plain": summary,
                              "text/html": f"<div class='envd-summary'><b>{html.escape(summary)}</b></div>",
                              SUMMARY_MIME: {"state": self.name, "builder": stage.builder, "ran": ran,
                                             "cached": cached, "seconds": round(stage.elapsed, 3)}}))
        self._show_reasons(reasons)
        if self._live:
            self._show_browser(stage, self.name)

    def failed(self, error: BaseException, previous: Any = None) -> None:
        """Final pictures of a failed or interrupted solve (the magic raises the short error itself).

        The reasons say why each step that ran (and the failed one) ran. A failed step then gets ONE
        output, the failure view (``_failure_view``, the stepper's too): the step, its exit code, its
        last log lines, the cell line, and a browser over the files the command saw, with a note
        saying which filesystem that is.
        """
        stage = getattr(error, "stage", None)
        model = stage.model if stage is not None else getattr(error, "model", None)
        reasons = self._explain(previous, self._definition, model) if model is not None else []
        self._end(model)
        self._show_reasons(reasons)
        if getattr(error, "step", ""):
            self._show_failure(error, stage)

    def _show_failure(self, error: Any, stage: Any) -> None:
        files = failed_files(stage)
        facts = failure_facts(self.name, error, files)
        title = files_title(self.name, facts)
        if self._live and keep_widgets_live():
            children: list[Any] = [FailureWidget(failure=facts)]
            if files is not None:
                children.append(BrowserWidget(files.list_dir, files.read_file, logs=stage.model, title=title))
            box = BundledBox(children=children)
            box.add_class("envd-failure-box")
            display(box)
        else:
            parts = [failure_bundle(facts)] + ([files_bundle(files, title)] if files is not None else [])
            display(StaticBundle(combined(parts)))

    def exported(self, spec: str, result: Any) -> None:
        line = f"{self.name}: exported as {spec} in {result.elapsed:.1f}s"
        display(StaticBundle({"text/plain": line, "text/html": f"<div>{html.escape(line)}</div>",
                              SUMMARY_MIME: {"state": self.name, "export": spec}}))

    # -- plumbing --------------------------------------------------------------------------------
    def _explain(self, previous: Any, definition: Any, model: Any) -> list:
        """The rebuild reasons (lang's report against ``previous`` and the solve's model: no extra solve),
        given to the live DAG before its final picture is taken."""
        from envd_jupyter import lang

        report = lang.explain_rebuild(previous, definition) if previous is not None else None
        reasons = step_reasons(report, definition.to_graph(), model)
        if self._live:
            self._dag.reasons = reasons
        return reasons

    def _show_reasons(self, reasons: list) -> None:
        """Without live widgets the static DAG was shown before the solve: the reasons follow here."""
        if not self._live and reasons:
            display(StaticBundle({"text/plain": reasons_text(reasons), "text/html": reasons_html(reasons)}))

    def _deliver(self, batch: list) -> None:
        self._dag.apply_events(batch)
        self._progress.apply_events(batch)

    def _end(self, model: Any) -> None:
        with self._events_lock:
            self._ended = True
        if not self._live:
            if model is not None:
                display(StaticBundle({"text/plain": progress_text(model), "text/html": progress_html(model)}))
            return
        self._coalescer.close()
        if model is not None:
            self._dag.update_model(model)
            self._progress.update_model(model)
        live = keep_widgets_live()
        for shown in self._shown.values():
            shown.finish(keep_widget=live)

    def _show_browser(self, stage: Any, title: str) -> None:
        browser = BrowserWidget(stage.list_dir, lambda path: stage.read_file(path, limit=256 * 1024 + 1),
                                logs=stage.model, title=title)
        if keep_widgets_live():
            show(browser)
        else:
            display(StaticBundle(browser.static_bundle()))

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
