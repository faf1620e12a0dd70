"""``%envd_step``'s views: a stepper (Next / Continue / Stop), the DAG at the paused vertex, the browser.

``Stepping`` drives one ``fleet.SteppedBuild`` for the notebook: the line forms call ``advance`` and
``stop``; the stepper widget's buttons send messages that call the same methods on a thread of
their own, so a long step never holds the kernel (its interrupt, other cells) and Stop can cancel
it. At each pause the DAG marks the paused vertex and the breakpoints, lists beside it why each
step ran (lang's ``explain_rebuild`` against the previous solve of that state name: no extra
solve), and the browser shows the stage's files and the logs of the steps just solved. A failing
step shows the failure view (``_failure_view``, the same as ``%%envd``'s): the step, its exit code,
its last log lines, the user's line, and the files the command saw.

Every display carries ``text/plain`` and static HTML with the position marked; live displays are
updated through their handles when the stepping ends, so a saved notebook keeps the last position.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from html import escape
from typing import Any

import traitlets
from IPython.core.error import UsageError
from IPython.display import display

from ._browse import one_line
from ._display import BundledBox, StaticBundle, combined
from ._failure_view import (BrowsedFiles, failed_files, failure_facts, failure_html, failure_lines, files_bundle,
                            files_title, stage_files)
from ._layout import layout_graph
from ._live import VertexBook
from ._reasons import reasons_html, reasons_text, step_reasons
from ._svg import dag_html, dag_text
from ._tables import BOX
from ._widgets import BrowserWidget, DAGWidget, _module, _Static

ENDED = ("done", "failed", "stopped")


class StepperWidget(_Static):
    """The stepper's buttons and position; its failure view when a step fails."""

    _esm = _module("stepper.js")
    state_name = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("ready").tag(sync=True)  # ready running paused done failed stopped
    headline = traitlets.Unicode("").tag(sync=True)  # where it is, in words (``stepper_headline``)
    position = traitlets.Dict().tag(sync=True)  # index, total, name, digest, cached, breakpoint
    breakpoints = traitlets.List(traitlets.Unicode()).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    failure = traitlets.Dict().tag(sync=True)  # _failure_view.failure_facts

    def static_bundle(self) -> dict[str, str]:
        facts = {name: getattr(self, name) for name in ("state_name", "status", "position", "breakpoints", "message",
                                                        "failure")}
        return {"text/plain": stepper_text(facts), "text/html": stepper_html(facts)}


class Stepping:
    """One state being stepped through from the notebook (see the module docstring).

    ``remember(stage)`` is told each pause (and the failure stage), so the other magics read it;
    ``ended(self)`` once, when the stepping is over (done, failed or stopped).
    """

    def __init__(self, name: str, stepped: Any, *, report: Any, collapse: int, live: bool,
                 remember: Callable[[Any], None], ended: Callable[["Stepping"], None]):
        self.name, self.stepped, self.report, self.live = name, stepped, report, live
        self._remember, self._ended = remember, ended
        self.graph = stepped.stepper.definition.to_graph()
        self.layout = layout_graph(self.graph, collapse=collapse)
        self.facts: dict[str, Any] = {"state_name": name, "status": "ready", "position": {}, "message": "",
                                      "failure": {}, "breakpoints": self._breakpoint_names()}
        self.facts["headline"] = stepper_headline(self.facts)
        self.vertices: dict[str, Any] = {}
        self.marks: dict[str, Any] = {"current": None, "breakpoints": self._breakpoint_digests()}
        self.reasons: list[dict[str, str]] = []
        self.stage: Any = None  # the pause (or failure stage) the magics read
        self.files: BrowsedFiles | None = None  # what the browser shows: the pause's files, or the failure's
        self._browse_title = ""
        self._logs: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # one step at a time, whoever asked
        self._ending = threading.Lock()  # a step that finishes as Stop is pressed: one of the two wins
        self._worker: threading.Thread | None = None
        self._handles: list[Any] = []
        self.stepper = self.dag = self.browser = self.box = None
        if live:
            self.stepper = StepperWidget(**self.facts)
            self.stepper.on_msg(self._on_message)
            self.dag = DAGWidget(self.graph, collapse=collapse, marks=self.marks)
            self.box = BundledBox(children=[self.stepper, self.dag])
            self.box.add_class("envd-stepper-box")

    # -- actions (the line forms and the buttons) ----------------------------------------------------
    @property
    def status(self) -> str:
        return self.facts["status"]

    def add_breakpoints(self, names: list[str]) -> None:
        self.stepped.stepper.breakpoints.update(names)
        self.facts["breakpoints"] = self._breakpoint_names()
        self.marks = {**self.marks, "breakpoints": self._breakpoint_digests()}
        self._publish()

    def advance(self, action: str) -> Any:
        """``next`` or ``continue``: the pause's Stage; a failing step raises its SolveError after the failure view."""
        if not self._lock.acquire(blocking=False):
            raise UsageError(f"{self.name}: a step is running (from the stepper's buttons); wait for it or --stop")
        try:
            return self._advance(action)
        finally:
            self._lock.release()

    def stop(self) -> None:
        """End the stepped build (cancelling a step that is running); the last pause closes with it."""
        with self._ending:
            if self.status in ENDED:
                return
            running = self._lock.locked()
            self._end("stopped", f"{self.name}: stopped stepping; the build has ended")
        if running:  # the step's wait ends with SolveCancelled on its thread
            self.stepped.build.cancel()
        self.stepped.close()
        if self.stage is not None:
            self.stage.close()

    def wait(self, timeout: float) -> bool:
        """Whether the step the buttons started has finished within ``timeout`` seconds."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return worker is None or not worker.is_alive()

    def summary(self) -> str:
        """The line the magic returns."""
        if self.status == "done":
            return f"{self.name}: paused at {_where(self.facts['position'])} — the last step; the stage stays open"
        if self.status == "paused":
            return (f"{self.name}: {stepper_headline(self.facts)} — %envd_step {self.name} for the next step, "
                    f"--continue for the next breakpoint, --stop to end")
        return self.facts["message"] or f"{self.name}: {self.status}"

    # -- displays -------------------------------------------------------------------------------
    def show(self) -> None:
        """The stepper where it is now: live (updated at each pause) or its static picture."""
        if self.live:
            self._handles.append(display(self.box, display_id=True))
        else:
            display(StaticBundle(self.static_bundle()))

    def static_bundle(self) -> dict[str, str]:
        parts = [{"text/plain": stepper_text(self.facts), "text/html": stepper_html(self.facts)},
                 {"text/plain": dag_text(self.layout, self.vertices, self.marks)
                  + (f"\n{reasons_text(self.reasons)}" if self.reasons else ""),
                  "text/html": dag_html(self.layout, self.vertices, self.marks,
                                        reasons_html(self.reasons) if self.reasons else "")}]
        if self.files is not None and not self.stage.closed:
            parts.append(files_bundle(self.files, self._browse_title))
        return combined(parts)

    # -- plumbing -------------------------------------------------------------------------------
    def _advance(self, action: str) -> Any:
        from envd_jupyter.buildkit import SolveError

        if self.status in ENDED:
            raise UsageError(f"{self.name}: stepping has ended ({self.status})")
        before = self.stepped.stepper.position
        self._set(status="running", message="")
        try:
            stage = self.stepped.next() if action == "next" else self.stepped.resume()
        except SolveError as error:
            with self._ending:
                if self.status != "stopped":
                    self._failed(error, before)
            raise
        except BaseException as error:  # cancelled, interrupted, the daemon gone: the build is over
            with self._ending:
                if self.status != "stopped":
                    self._end("stopped", f"{self.name}: {one_line(error)}")
                    self.stepped.close()
            raise
        with self._ending:
            if self.status == "stopped":  # Stop won: this pause is gone with the build
                stage.close()
            else:
                self._paused(stage, before, action)
        return stage

    def _paused(self, stage: Any, before: int, action: str) -> None:
        step = self.stepped.stepper.last
        # Continue stops at a breakpoint or at the end; Next anywhere, on a breakpoint or not.
        at_breakpoint = action == "continue" and self.stepped.stepper.is_breakpoint(step.vertex)
        self.facts["position"] = {"index": step.position, "total": step.total, "name": step.vertex.name,
                                  "digest": step.vertex.digest, "cached": bool(step.ref.cached),
                                  "breakpoint": at_breakpoint}
        self.marks = {**self.marks, "current": step.vertex.digest}
        solved = {vertex.digest for vertex in self.stepped.stepper.vertices[before:step.position]}
        title = f"{self.name}: files at step {step.position}/{step.total} ({step.vertex.name})"
        self._show_stage(stage, stage_files(stage), title, solved)
        self._remember(stage)
        if self.stepped.done:
            self._end("done", f"{self.name}: stepped to the end; the stage stays open")
        else:
            self._set(status="paused", message="")

    def _failed(self, error: Any, before: int) -> None:
        stage = getattr(error, "stage", None)
        files = failed_files(stage)
        self.facts["failure"] = failure_facts(self.name, error, files)
        vertices = self.stepped.stepper.vertices
        index = next((i for i, vertex in enumerate(vertices) if vertex.digest == error.digest), None)
        if index is not None:
            self.facts["position"] = {"index": index + 1, "total": len(vertices), "name": vertices[index].name,
                                      "digest": error.digest, "cached": False}
        self.marks = {**self.marks, "current": error.digest or None}
        solved = {vertex.digest for vertex in self.stepped.stepper.vertices[before:]} | {error.digest}
        self._show_stage(stage, files, files_title(self.name, self.facts["failure"]), solved,
                         model=getattr(error, "model", None))
        if stage is not None:
            self._remember(stage)
        self._end("failed", "")

    def _show_stage(self, stage: Any, files: BrowsedFiles | None, title: str, solved: set[str],
                    model: Any = None) -> None:
        """The DAG's colours and reasons from the build's model; the browser over ``files``."""
        book = VertexBook()
        book.replace(model if model is not None else self.stepped.build.model)
        self.vertices = book.by_digest()
        self.reasons = step_reasons(self.report, self.graph, book.model())
        self._logs = [vertex for vertex in book.vertices() if vertex["digest"] in solved]
        self.stage, self.files, self._browse_title = stage, files, title
        if self.live:
            with self.dag.hold_sync():
                self.dag.update_model(book.model())
                self.dag.marks, self.dag.reasons = self.marks, self.reasons
            self.dag.flush()
            if files is not None:
                self._browser_over(files, title)

    def _browser_over(self, files: BrowsedFiles, title: str) -> None:
        if self.browser is None:
            self.browser = BrowserWidget(files.list_dir, files.read_file, logs=self._logs, title=title)
            self.box.children = [*self.box.children, self.browser]
        else:
            self.browser.show(files.list_dir, files.read_file, logs=self._logs, title=title)

    def _set(self, **facts: Any) -> None:
        self.facts.update(facts)
        self._publish()

    def _publish(self) -> None:
        self.facts["headline"] = stepper_headline(self.facts)
        if self.live:
            with self.stepper.hold_sync():
                for name, value in self.facts.items():
                    setattr(self.stepper, name, value)
            self.dag.marks = self.marks

    def _end(self, status: str, message: str) -> None:
        self._set(status=status, message=message)
        self._ended(self)
        for handle in self._handles:  # the saved notebook keeps where the stepping ended
            handle.update(self.box)

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A button: Stop at once; Next / Continue on a thread (ignored while a step runs)."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "stop":
            self.stop()
        elif kind in ("next", "continue") and self.status not in ENDED and self._lock.acquire(blocking=False):
            self._set(status="running", message="")
            self._worker = threading.Thread(target=contextvars.copy_context().run, args=(self._run, kind),
                                            name=f"envd-step-{self.name}", daemon=True)
            self._worker.start()

    def _run(self, action: str) -> None:
        try:
            self._advance(action)
        except BaseException:  # the failure view (or the stopped message) shows it
            pass
        finally:
            self._lock.release()

    def _breakpoint_names(self) -> list[str]:
        stepper = self.stepped.stepper
        return [vertex.name for vertex in stepper.vertices if stepper.is_breakpoint(vertex)]

    def _breakpoint_digests(self) -> list[str]:
        stepper = self.stepped.stepper
        return [vertex.digest for vertex in stepper.vertices if stepper.is_breakpoint(vertex)]


def _where(at: dict[str, Any]) -> str:
    return f"step {at['index']}/{at['total']}: {at['name']}" + (" (cached)" if at.get("cached") else "") \
        if at else "the start"


def stepper_headline(facts: dict[str, Any]) -> str:
    """Where the stepping is, in words: the stepper's line, its widget's and its static picture's."""
    status, at = facts["status"], facts["position"]
    paused = f"paused at breakpoint {_where(at)}" if at.get("breakpoint") else f"paused at {_where(at)}"
    return {"paused": paused, "done": f"done: {_where(at)}", "running": f"running after {_where(at)}",
            "failed": f"failed at {_where(at)}"}.get(status, status)


def stepper_text(facts: dict[str, Any]) -> str:
    """The stepper's ``text/plain``: state, where it is paused, breakpoints, the failure."""
    lines = [f"stepper {facts['state_name']}: {stepper_headline(facts)}",
             f"breakpoints: {', '.join(facts['breakpoints']) or 'none'}"]
    failure = facts.get("failure") or {}
    if failure:
        lines += failure_lines(failure)
    elif facts.get("message"):
        lines.append(facts["message"])
    return "\n".join(line for line in lines if line)


def stepper_html(facts: dict[str, Any]) -> str:
    """The stepper's static picture: the same facts, the failure view in red."""
    failure = facts.get("failure") or {}
    text = stepper_text({**facts, "failure": {}}).splitlines()
    rest = failure_html(failure) if failure else "".join(f"<div>{escape(line)}</div>" for line in text[2:])
    return (f"<div class='envd-static envd-stepper' data-status='{escape(facts['status'])}' style='{BOX}'>"
            f"<div style='font-weight:600'>{escape(text[0])}</div>"
            f"<div style='color:var(--jp-ui-font-color2,#555)'>{escape(text[1])}</div>{rest}</div>")
