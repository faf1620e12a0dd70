"""The Status stream merged by vertex digest into a BuildModel, plus structured VertexEvents.

BuildKit sends partial updates: the same vertex arrives again when it starts, completes or
fails, statuses update by id, and logs arrive as byte chunks. The model keeps the latest view
of every vertex and a bounded tail of its logs; each update also yields VertexEvents so a
widget or renderer can react without re-reading the whole model.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

DEFAULT_LOG_CAP = 1 << 20  # bytes of log kept per vertex (the tail wins)
STDOUT, STDERR = 1, 2


def _ts(message, name: str) -> float | None:
    """A protobuf Timestamp field as epoch seconds, None when unset."""
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return stamp.seconds + stamp.nanos / 1e9


@dataclass
class LogChunk:
    stream: int
    timestamp: float
    data: bytes


@dataclass
class StatusState:
    """One progress counter of a vertex (a layer download, a file transfer...)."""

    id: str
    name: str = ""
    current: int = 0
    total: int = 0
    timestamp: float | None = None
    started: float | None = None
    completed: float | None = None


@dataclass
class VertexState:
    digest: str
    index: int  # order of first appearance in the Status stream, 1-based
    name: str = ""
    inputs: tuple[str, ...] = ()
    started: float | None = None
    completed: float | None = None
    cached: bool = False
    error: str = ""
    statuses: dict[str, StatusState] = field(default_factory=dict)
    logs: deque = field(default_factory=deque)
    log_bytes: int = 0
    dropped_log_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.completed is not None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.completed is None:
            return None
        return max(0.0, self.completed - self.started)

    def log_text(self) -> str:
        return b"".join(chunk.data for chunk in self.logs).decode("utf-8", "replace")

    def log_tail(self, lines: int = 10) -> list[str]:
        text = self.log_text().rstrip("\n")
        return text.splitlines()[-lines:] if text else []


@dataclass(frozen=True)
class VertexEvent:
    """One change to one vertex. ``kind``: started, cached, completed, error, log, status, warning."""

    kind: str
    vertex: VertexState
    log: LogChunk | None = None
    status: StatusState | None = None
    warning: str = ""


EventCallback = Callable[[VertexEvent], None]


class BuildModel:
    """Every vertex of one solve, merged by digest, in order of first appearance."""

    def __init__(self, log_cap: int = DEFAULT_LOG_CAP, source_digests: frozenset[str] = frozenset()):
        self.vertices: dict[str, VertexState] = {}
        self.source_digests = source_digests  # image/local/git sources: resolved, never "cached"
        self._log_cap = log_cap

    def _vertex(self, digest: str) -> VertexState:
        vertex = self.vertices.get(digest)
        if vertex is None:
            vertex = self.vertices[digest] = VertexState(digest, len(self.vertices) + 1)
        return vertex

    def apply(self, response) -> list[VertexEvent]:
        """Merge one StatusResponse; return what changed, in BuildKit's order."""
        events: list[VertexEvent] = []
        finished: list[VertexEvent] = []  # completion last, after this response's statuses and logs
        for msg in response.vertexes:
            for event in self._merge_vertex(msg):
                (events if event.kind == "started" else finished).append(event)
        for msg in response.statuses:
            vertex = self._vertex(msg.vertex)
            status = vertex.statuses.setdefault(msg.ID, StatusState(msg.ID))
            status.name, status.current, status.total = msg.name, msg.current, msg.total
            status.timestamp = _ts(msg, "timestamp")
            status.started = _ts(msg, "started")
            status.completed = _ts(msg, "completed")
            events.append(VertexEvent("status", vertex, status=status))
        for msg in response.warnings:
            vertex = self._vertex(msg.vertex)
            text = msg.short.decode("utf-8", "replace")
            vertex.warnings.append(text)
            events.append(VertexEvent("warning", vertex, warning=text))
        for msg in response.logs:
            vertex = self._vertex(msg.vertex)
            chunk = LogChunk(msg.stream, _ts(msg, "timestamp") or 0.0, bytes(msg.msg))
            self._keep_log(vertex, chunk)
            events.append(VertexEvent("log", vertex, log=chunk))
        return events + finished

    def _merge_vertex(self, msg) -> Iterable[VertexEvent]:
        vertex = self._vertex(msg.digest)
        was_started, was_done = vertex.started is not None, vertex.done
        vertex.name = msg.name or vertex.name
        vertex.inputs = tuple(msg.inputs) or vertex.inputs
        vertex.cached = vertex.cached or msg.cached
        vertex.started = _ts(msg, "started") or vertex.started
        vertex.completed = _ts(msg, "completed") or vertex.completed
        vertex.error = msg.error or vertex.error
        if vertex.started is not None and not was_started:
            yield VertexEvent("started", vertex)
        if vertex.done and not was_done:
            kind = "error" if vertex.error else "cached" if vertex.cached else "completed"
            yield VertexEvent(kind, vertex)

    def _keep_log(self, vertex: VertexState, chunk: LogChunk) -> None:
        vertex.logs.append(chunk)
        vertex.log_bytes += len(chunk.data)
        while vertex.log_bytes > self._log_cap and len(vertex.logs) > 1:
            dropped = vertex.logs.popleft()
            vertex.log_bytes -= len(dropped.data)
            vertex.dropped_log_bytes += len(dropped.data)

    # Summaries used by SolveResult, errors and benchmarks.
    @property
    def total(self) -> int:
        return len(self.vertices)

    @property
    def cached_count(self) -> int:
        return sum(v.cached for v in self.vertices.values())

    @property
    def fully_cached(self) -> bool:
        """True when every operation vertex came from cache (sources are only re-resolved)."""
        ops = [v for v in self.vertices.values() if v.digest not in self.source_digests]
        return bool(ops) and all(v.cached for v in ops)

    def failed(self) -> list[VertexState]:
        return [v for v in self.vertices.values() if v.error]
