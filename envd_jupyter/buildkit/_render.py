"""Text renderers for VertexEvents: ``buildctl --progress=plain`` output and a compact TTY view.

Both are plain ``on_event`` callbacks, so a script gets BuildKit's familiar log by passing
``on_event=PlainRenderer(sys.stderr)`` and a notebook can use its own widget instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from envd_jupyter.buildkit._progress import VertexEvent, VertexState

CANCELED_SUFFIX = "context canceled"


def _seconds_label(seconds: float) -> str:
    """BuildKit prints 3 decimals under 10 s, 2 under 100 s, then 1."""
    precision = 3 if seconds < 10 else 2 if seconds < 100 else 1
    return f"{seconds:.{precision}f}"


def _bytes_label(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.2f}{unit}"
        value /= 1000
    return f"{value:.2f}TB"


class PlainRenderer:
    """Writes the plain progress format: ``#N name``, ``#N 0.123 line``, ``#N DONE 0.4s``..."""

    def __init__(self, out: TextIO | None = None):
        self._out = out or sys.stderr
        self._current: VertexState | None = None
        self._numbers: dict[str, int] = {}  # "#N" in order of first print, as buildctl numbers
        self._printed_any = False
        self._partial: dict[str, bool] = {}

    def __call__(self, event: VertexEvent) -> None:
        vertex = event.vertex
        if event.kind == "started" and (vertex.done or self._current is not None):
            return  # printed with its first output or its end, as buildctl does for parallel steps
        if event.kind in ("status",) and event.status is not None and event.status.completed is None \
                and vertex is not self._current:
            return  # open counters of other vertices would only interleave noise
        self._switch_to(vertex)
        write = self._out.write
        if event.kind == "log" and event.log is not None:
            self._write_log(vertex, event.log)
        elif event.kind == "status" and event.status is not None:
            write(f"#{self._n(vertex)} {self._status_line(event.status)}\n")
        elif event.kind == "warning":
            write(f"#{self._n(vertex)} WARN: {event.warning}\n")
        elif event.kind in ("completed", "cached", "error"):
            self._end_partial(vertex)
            if event.kind == "error":
                if vertex.error.endswith(CANCELED_SUFFIX):
                    write(f"#{self._n(vertex)} CANCELED\n")
                else:
                    write(f"#{self._n(vertex)} ERROR: {vertex.error}\n")
            elif event.kind == "cached":
                write(f"#{self._n(vertex)} CACHED\n")
            else:
                duration = vertex.duration
                write(f"#{self._n(vertex)} DONE{f' {duration:.1f}s' if duration is not None else ''}\n")
            self._current = None
        elif vertex.done:
            self._current = None  # a late update to a finished step: no "#N ..." continuation
        self._out.flush()

    def _n(self, vertex: VertexState) -> int:
        return self._numbers.setdefault(vertex.digest, len(self._numbers) + 1)

    def _switch_to(self, vertex: VertexState) -> None:
        if vertex is self._current:
            return
        if self._current is not None:
            self._end_partial(self._current)
            if not self._current.done:
                self._out.write(f"#{self._n(self._current)} ...\n")
        if self._printed_any:
            self._out.write("\n")
        self._printed_any = True
        self._out.write(f"#{self._n(vertex)} {vertex.name}\n")
        self._current = vertex

    def _write_log(self, vertex: VertexState, chunk) -> None:
        text = chunk.data.decode("utf-8", "replace")
        since = max(0.0, chunk.timestamp - vertex.started) if vertex.started else 0.0
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if last and piece == "":
                break
            if i == 0 and self._partial.get(vertex.digest):
                self._out.write(piece)
            else:
                self._out.write(f"#{self._n(vertex)} {_seconds_label(since)} {piece}")
            if not last:
                self._out.write("\n")
        self._partial[vertex.digest] = not text.endswith("\n")

    def _end_partial(self, vertex: VertexState) -> None:
        if self._partial.pop(vertex.digest, False):
            self._out.write("\n")

    @staticmethod
    def _status_line(status) -> str:
        size = ""
        if status.total:
            size = f" {_bytes_label(status.current)} / {_bytes_label(status.total)}"
        elif status.current:
            size = f" {_bytes_label(status.current)}"
        timing = ""
        end = status.completed or status.timestamp
        if status.started is not None and end is not None and end - status.started > 0.01:
            timing = f" {end - status.started:.1f}s"
        if status.completed is not None:
            timing += " done"
        return f"{status.id}{size}{timing}"


class TtyRenderer:
    """A compact live view: one header line plus the most recent steps, redrawn in place."""

    def __init__(self, out: TextIO | None = None, *, rows: int = 8, interval: float = 0.1):
        self._out = out or sys.stderr
        self._rows, self._interval = rows, interval
        self._vertices: dict[str, VertexState] = {}
        self._drawn = 0
        self._last_draw = 0.0
        self._start = time.monotonic()

    def __call__(self, event: VertexEvent) -> None:
        self._vertices[event.vertex.digest] = event.vertex
        final = event.kind in ("completed", "cached", "error")
        if final or time.monotonic() - self._last_draw >= self._interval:
            self.draw()

    def draw(self) -> None:
        lines = self._lines()
        if self._drawn:
            self._out.write(f"\x1b[{self._drawn}F\x1b[J")
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()
        self._drawn = len(lines)
        self._last_draw = time.monotonic()

    def _lines(self) -> list[str]:
        vertices = list(self._vertices.values())
        finished = sum(v.done for v in vertices)
        lines = [f"[+] Building {time.monotonic() - self._start:.1f}s ({finished}/{len(vertices)})"]
        for vertex in vertices[-self._rows:]:
            if vertex.error:
                state = "ERROR"
            elif vertex.cached:
                state = "CACHED"
            elif vertex.done:
                state = f"{vertex.duration or 0:.1f}s"
            else:
                state = "..."
            lines.append(f" => {vertex.name[:70]:<70} {state}")
            if not vertex.done and vertex.logs:
                tail = vertex.log_tail(1)
                if tail:
                    lines.append(f"    {tail[0][:74]}")
        return lines
