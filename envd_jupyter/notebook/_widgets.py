"""anywidget widgets over a build: its DAG, its progress, a scheduling decision, a solved stage's files.

The JavaScript is hand-written ESM shipped in ``static/`` (package data: no CDN, no build step,
works offline); a shared ``common.js`` is prepended to each widget's module. Every widget's
MIME bundle also carries ``text/plain`` and a static ``text/html`` picture, so a notebook
executed headless (where widget views are lost) still shows the DAG, the tables or the listing.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._browse import FILE_CAP, directory_listing, file_view, listing_html, listing_text, titled
from ._layout import layout_graph
from ._live import Throttle, VertexBook
from ._reasons import reasons_html, reasons_text
from ._svg import STATE_STYLES, dag_html, dag_text
from ._tables import progress_html, progress_text, scores_dict, scores_html, scores_text, summary_line

STATIC = Path(__file__).with_name("static")


def _module(name: str) -> str:
    return (STATIC / "common.js").read_text() + "\n" + (STATIC / name).read_text()


class _Static(anywidget.AnyWidget):
    """Adds the static ``text/html`` and ``text/plain`` of ``static_bundle()`` to the widget view."""

    _css = (STATIC / "widgets.css").read_text()

    def static_bundle(self) -> dict[str, str]:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        return {**data, **self.static_bundle()}, metadata


class _LiveVertices(_Static):
    """Vertex states fed by events or models, pushed to the browser at most 10 times a second."""

    def __init__(self, *, max_per_second: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._book = VertexBook()
        self._book_lock = threading.Lock()  # events arrive on the solve's thread, pushes on the timer's
        self._throttle = Throttle(self._push, max_per_second=max_per_second)

    def update_model(self, model: Any) -> None:
        """The whole ``BuildModel`` (object or ``to_dict()``) or a vertex list, as the new state."""
        with self._book_lock:
            self._book.replace(model)
        self._throttle.request()

    def update_vertices(self, vertices: Iterable[Any]) -> None:
        """Changed ``VertexState``s (objects or dicts)."""
        with self._book_lock:
            self._book.update(vertices)
        self._throttle.request()

    def apply_events(self, events: Iterable[Any]) -> None:
        """``VertexEvent``s (objects or dicts); usable as an ``EventCoalescer``'s batch callback."""
        with self._book_lock:
            self._book.apply(events)
        self._throttle.request()

    def __call__(self, event: Any) -> None:
        """One event: the widget is itself an event callback."""
        self.apply_events([event])

    def flush(self) -> None:
        """Push what is pending now (the end of a solve)."""
        self._throttle.flush()

    def _push(self) -> None:
        with self._book_lock:
            snapshot = self._snapshot()
        with self.hold_sync():
            for name, value in snapshot.items():
                setattr(self, name, value)

    def _snapshot(self) -> dict[str, Any]:
        """Trait name → value, read from the records (under their lock)."""
        raise NotImplementedError

    def static_bundle(self) -> dict[str, str]:
        with self._book_lock:
            return self._static(self._snapshot())

    def _static(self, snapshot: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError


class DAGWidget(_LiveVertices):
    """The graph, coloured live by vertex state; click a node for its op, source line and logs.

    ``marks`` ({"current": digest, "breakpoints": [digests]}) draws a stepper's position and
    breakpoints; ``reasons`` (``_reasons.step_reasons`` rows) lists beside the graph why each step ran.
    """

    _esm = _module("dag.js")
    # Not `layout`: ipywidgets' DOMWidget view reads that name as a Layout widget reference.
    graph_layout = traitlets.Dict().tag(sync=True)
    vertices = traitlets.Dict().tag(sync=True)
    styles = traitlets.Dict(STATE_STYLES).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    marks = traitlets.Dict().tag(sync=True)
    reasons = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, graph: dict[str, Any], *, collapse: int | None = 12, max_nodes: int = 2000,
                 **kwargs: Any) -> None:
        self._graph = graph
        self._collapse = collapse
        self._max_nodes = max_nodes
        super().__init__(graph_layout=self._lay_out([]), **kwargs)

    def _lay_out(self, expanded: list[str]) -> dict[str, Any]:
        return layout_graph(self._graph, collapse=self._collapse, max_nodes=self._max_nodes, expanded=expanded)

    @traitlets.observe("expanded")
    def _expanded_changed(self, change: dict[str, Any]) -> None:
        self.graph_layout = self._lay_out(change["new"])

    def _snapshot(self) -> dict[str, Any]:
        return {"vertices": self._book.by_digest()}

    def _static(self, snapshot: dict[str, Any]) -> dict[str, str]:
        vertices, marks, reasons = snapshot["vertices"], self.marks, self.reasons
        text = dag_text(self.graph_layout, vertices, marks) + (f"\n{reasons_text(reasons)}" if reasons else "")
        beside = reasons_html(reasons) if reasons else ""
        return {"text/plain": text, "text/html": dag_html(self.graph_layout, vertices, marks, beside)}


class ProgressWidget(_LiveVertices):
    """Vertex list with state, duration, cached and the last log lines; a summary line on top."""

    _esm = _module("progress.js")
    vertices = traitlets.List(traitlets.Dict()).tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)
    styles = traitlets.Dict(STATE_STYLES).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def _snapshot(self) -> dict[str, Any]:
        model = self._book.model()
        return {"vertices": [dict(v, log_tail=list(v["log_tail"])) for v in model["vertices"]],
                "summary": {**{k: model[k] for k in ("total", "cached", "ran", "failed", "done")},
                            "line": summary_line(model)}}

    def _static(self, snapshot: dict[str, Any]) -> dict[str, str]:
        model = {**snapshot["summary"], "vertices": snapshot["vertices"]}
        return {"text/plain": progress_text(model), "text/html": progress_html(model)}


class ScoresWidget(_Static):
    """One scheduling decision: per cycle, endpoint × scorer (raw, weighted, total), removals, the pick."""

    _esm = _module("scores.js")
    scores = traitlets.Dict().tag(sync=True)

    def __init__(self, result: Any = (), **kwargs: Any) -> None:
        super().__init__(scores=scores_dict(result), **kwargs)

    def update(self, result: Any) -> None:
        """Show another decision (a SchedulingResult, its dict, or cycle records)."""
        self.scores = scores_dict(result)

    def static_bundle(self) -> dict[str, str]:
        return {"text/plain": scores_text(self.scores), "text/html": scores_html(self.scores)}


class BrowserWidget(_Static):
    """Directory tree and file viewer over a solved stage, plus each step's logs.

    ``list_dir(path)`` returns entries (``FileStat``s, fsutil ``Stat``s or dicts with name/path,
    is_dir or mode, size); ``read_file(path)`` returns bytes. Both are called only when the
    user opens that directory or file; files show at most FILE_CAP bytes, binary ones as such.
    """

    _esm = _module("browser.js")
    root = traitlets.Unicode("/").tag(sync=True)
    listings = traitlets.Dict().tag(sync=True)
    file = traitlets.Dict().tag(sync=True)
    logs = traitlets.List(traitlets.Dict()).tag(sync=True)
    styles = traitlets.Dict(STATE_STYLES).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    def __init__(self, list_dir: Callable[[str], Iterable[Any]], read_file: Callable[[str], bytes], *,
                 root: str = "/", logs: Any = (), **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
        self.on_msg(self._on_message)
        self.show(list_dir, read_file, logs=logs, title=self.title)

    def show(self, list_dir: Callable[[str], Iterable[Any]], read_file: Callable[[str], bytes], *,
             logs: Any = (), title: str = "") -> None:
        """Browse another filesystem (a stepper's next pause): forget what was listed and opened."""
        self._list_dir = list_dir
        self._read_file = read_file
        with self.hold_sync():
            self.title = title
            self.file = {}
            self.listings = {}
            self.set_logs(logs)
            self.open_dir(self.root)

    @classmethod
    def for_ref(cls, ref: Any, **kwargs: Any) -> "BrowserWidget":
        """Over a ``buildkit.Ref`` (anything with ``read_dir(path)`` and ``read_file(path, length=)``)."""
        return cls(ref.read_dir, lambda path: ref.read_file(path, length=FILE_CAP + 1), **kwargs)

    def set_logs(self, model: Any) -> None:
        """The per-step logs tab, from a ``BuildModel`` (or its dict, or a vertex list)."""
        book = VertexBook()
        book.replace(model)
        self.logs = book.vertices()

    def open_dir(self, path: str) -> None:
        """List ``path`` (once) so the tree can show it."""
        path = posixpath.normpath(path)
        if path not in self.listings:
            self.listings = {**self.listings, path: directory_listing(self._list_dir, path)}

    def open_file(self, path: str) -> None:
        """Show ``path`` in the viewer: text up to FILE_CAP, or "binary, N bytes"."""
        path = posixpath.normpath(path)
        parent = self.listings.get(posixpath.dirname(path), {})
        size = next((e["size"] for e in parent.get("entries", ()) if e["path"] == path), None)
        self.file = file_view(self._read_file, path, size)

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("path"), str):
            return
        if content.get("type") == "list":
            self.open_dir(content["path"])
        elif content.get("type") == "open":
            self.open_file(content["path"])

    def static_bundle(self) -> dict[str, str]:
        root = self.listings.get(posixpath.normpath(self.root), {})
        return titled({"text/plain": listing_text(self.root, root, self.file),
                       "text/html": listing_html(self.root, root, self.file)}, self.title)

