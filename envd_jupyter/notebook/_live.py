"""What the live widgets keep between redraws: per-vertex records fed by events, and a redraw throttle.

A build can stream thousands of log lines a second; the widgets keep only each vertex's last
lines and push to the browser at most ``max_per_second`` times a second (a trailing change is
pushed by a timer, never held back), so the kernel stays responsive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._tables import build_order, model_dict

LOG_LINES = 10
LINE_CHARS = 2000
KEPT_FIELDS = ("digest", "index", "name", "state", "started", "completed", "duration", "cached", "error",
               "log_tail", "log_bytes")


def as_dict(value: Any) -> dict[str, Any]:
    """The library's event/state objects by their ``to_dict()``; dicts as they are."""
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


class Throttle:
    """Calls ``apply`` at most ``max_per_second`` times a second for any number of ``request()`` calls.

    A request inside the interval arms one timer for the rest of it; ``flush()`` applies a
    pending change at once (the end of a solve). Thread-safe; ``apply`` runs under the lock.
    """

    def __init__(self, apply: Callable[[], None], *, max_per_second: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[float, Callable[[], None]], Any] = threading.Timer) -> None:
        self._apply = apply
        self._interval = 1.0 / max_per_second
        self._clock = clock
        self._timer_factory = timer
        self._lock = threading.RLock()
        self._last = float("-inf")
        self._pending = False
        self._timer: Any = None

    def request(self) -> None:
        with self._lock:
            self._pending = True
            if self._timer is not None:
                return
            wait = self._last + self._interval - self._clock()
            if wait <= 0:
                self._run()
            else:
                self._timer = self._timer_factory(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pending:
                self._run()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending:
                self._run()

    def _run(self) -> None:
        self._pending = False
        self._last = self._clock()
        self._apply()


class VertexBook:
    """Vertex records by digest (``VertexState.to_dict()`` fields, at most LOG_LINES log lines each)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._open_line: set[str] = set()  # digests whose last log chunk did not end its line
        self.summary: dict[str, Any] | None = None

    def replace(self, model: Any) -> None:
        """Take a whole ``BuildModel`` (or its ``to_dict()``, or a vertex list) as the new truth."""
        model = as_dict(model) if not isinstance(model, (list, tuple)) else {"vertices": list(model)}
        self.records = {}
        self._open_line.clear()
        self.update(model["vertices"])
        self.summary = {k: model[k] for k in ("total", "cached", "ran", "failed", "done") if k in model} or None

    def update(self, vertices: Iterable[Any]) -> None:
        """Merge vertex dicts (or VertexState objects) into the records."""
        for vertex in vertices:
            vertex = as_dict(vertex)
            record = self.records.setdefault(vertex["digest"], {"log_tail": []})
            record.update((k, vertex[k]) for k in KEPT_FIELDS if k in vertex)
            record["log_tail"] = list(record.get("log_tail") or ())[-LOG_LINES:]

    def apply(self, events: Iterable[Any]) -> None:
        """Fold ``VertexEvent``s (objects or ``to_dict()``s): vertex fields, and log text into the tail."""
        for event in events:
            event = as_dict(event)
            vertex = event.get("vertex") or {"digest": event["digest"]}
            self.update([{k: v for k, v in vertex.items() if k != "log_tail"}])
            if event.get("kind") == "log" and event.get("log"):
                self._add_log(event["digest"], event["log"].get("text", ""))
        self.summary = None

    def _add_log(self, digest: str, text: str) -> None:
        record = self.records[digest]
        lines = text.split("\n")
        tail = record["log_tail"]
        if digest in self._open_line and tail:
            tail[-1] += lines.pop(0)
        if text.endswith("\n"):
            lines.pop()
            self._open_line.discard(digest)
        else:
            self._open_line.add(digest)
        tail.extend(line.rstrip("\r") for line in lines)
        del tail[:-LOG_LINES]
        if tail and len(tail[-1]) > LINE_CHARS:  # one endless line must not grow without bound
            tail[-1] = "…" + tail[-1][-LINE_CHARS:]
        record["log_bytes"] = record.get("log_bytes", 0) + len(text.encode())

    def vertices(self) -> list[dict[str, Any]]:
        """Records in build order (start time, then the daemon's index)."""
        return build_order(self.records.values())

    def by_digest(self) -> dict[str, dict[str, Any]]:
        return {digest: dict(record, log_tail=list(record["log_tail"])) for digest, record in self.records.items()}

    def model(self) -> dict[str, Any]:
        """A ``BuildModel.to_dict()``-shaped dict: the last model's counts, or counts from the records."""
        derived = model_dict(self.vertices())
        return derived | self.summary if self.summary else derived
