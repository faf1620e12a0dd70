"""The Status stream merged by vertex digest into a BuildModel, plus structured VertexEvents.

BuildKit sends partial updates: the same vertex arrives again when it starts, completes or
fails, statuses update by id, and logs arrive as byte chunks. The model keeps the latest view
of every vertex and a bounded tail of its logs; each update also yields VertexEvents so a
widget or renderer can react without re-reading the whole model.

``to_dict()`` turns the model and events into plain JSON data (versioned by EVENT_SCHEMA_VERSION,
described by ``events.schema.json``), the one shape widgets, servers and history records read.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from envd_jupyter.buildkit._mask import SecretMask

DEFAULT_LOG_CAP = 1 << 20  # bytes of log kept per vertex (the tail wins)
# What one build may make us hold, whatever the daemon sends; past a cap a note says what was dropped.
MAX_VERTICES = 10_000
MAX_STATUSES = 1_000  # progress counters per vertex
MAX_WARNINGS = 100  # per vertex
LOG_BUDGET = 64 << 20  # log bytes kept over all vertices (the oldest lines go first)
MAX_LOG_CHUNKS = 100_000  # log messages kept over all vertices
CAPPED_DIGEST = "envd:capped"  # the note vertex that carries the warnings about caps
STDOUT, STDERR = 1, 2
EVENT_SCHEMA_VERSION = 1  # bump when a to_dict() shape changes incompatibly


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
    seq: int = field(default=0, repr=False, compare=False)  # arrival order over the whole build


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

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "current": self.current, "total": self.total,
                "completed": self.completed is not None}


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

    @property
    def state(self) -> str:
        """One word for a view: pending, running, cached, done or failed."""
        if self.error:
            return "failed"
        if self.cached:
            return "cached"
        if self.done:
            return "done"
        return "running" if self.started is not None else "pending"

    def log_text(self) -> str:
        return b"".join(chunk.data for chunk in tuple(self.logs)).decode("utf-8", "replace")

    def log_tail(self, lines: int = 10) -> list[str]:
        """The last ``lines`` lines, decoding only the chunks they come from (a view redraws often)."""
        kept: list[bytes] = []
        newlines, in_trailing_newlines = 0, True
        for chunk in reversed(tuple(self.logs)):  # a snapshot: the Status thread may be appending
            kept.append(chunk.data)
            counted = chunk.data.rstrip(b"\n") if in_trailing_newlines else chunk.data
            in_trailing_newlines = in_trailing_newlines and not counted
            newlines += counted.count(b"\n")
            if newlines >= lines:
                break  # the first kept line may be partial, but it is not among the last `lines`
        text = b"".join(reversed(kept)).decode("utf-8", "replace").rstrip("\n")
        return text.splitlines()[-lines:] if text else []

    def to_dict(self, *, log_tail: bool = True) -> dict:
        """JSON data (with the last 10 log lines); safe to call from another thread while the solve runs."""
        data = {"digest": self.digest, "index": self.index, "name": self.name, "inputs": list(self.inputs),
                "state": self.state, "started": self.started, "completed": self.completed,
                "duration": self.duration, "cached": self.cached, "error": self.error,
                "log_bytes": self.log_bytes,
                "statuses": [status.to_dict() for status in tuple(self.statuses.values())]}
        if log_tail:
            data["log_tail"] = self.log_tail()
        return data


@dataclass(frozen=True)
class VertexEvent:
    """One change to one vertex. ``kind``: started, cached, completed, error, log, status, warning."""

    kind: str
    vertex: VertexState
    log: LogChunk | None = None
    status: StatusState | None = None
    warning: str = ""

    def to_dict(self) -> dict:
        """JSON data: the vertex as it is now (without its log tail) and what this event carries."""
        log = None
        if self.log is not None:
            log = {"stream": self.log.stream, "timestamp": self.log.timestamp,
                   "text": self.log.data.decode("utf-8", "replace")}
        return {"version": EVENT_SCHEMA_VERSION, "kind": self.kind, "digest": self.vertex.digest,
                "vertex": self.vertex.to_dict(log_tail=False), "log": log,
                "status": self.status.to_dict() if self.status is not None else None,
                "warning": self.warning}


EventCallback = Callable[[VertexEvent], None]


class BuildModel:
    """Every vertex of one solve, merged by digest, in order of first appearance."""

    def __init__(self, log_cap: int = DEFAULT_LOG_CAP, source_digests: frozenset[str] = frozenset(),
                 began: float | None = None, *, max_vertices: int = MAX_VERTICES, log_budget: int = LOG_BUDGET,
                 max_log_chunks: int = MAX_LOG_CHUNKS, mask: SecretMask | None = None):
        self.vertices: dict[str, VertexState] = {}
        # The solve's secret values, replaced in the daemon's text (logs, errors, warnings) before it is kept.
        self.mask = mask or SecretMask()
        self._held: dict[tuple[str, int], bytes] = {}  # a log stream's end that may begin a secret
        self.source_digests = source_digests  # image/local/git sources (and client notes): never "cached"
        # When this build began (epoch seconds). BuildKit shares a vertex still held by another open build
        # instead of caching it, and replays that build's timestamps without ``cached``: a vertex that
        # completed before this build began was done by the other build, so it counts as cached here.
        self.began = began
        self._log_cap = log_cap
        self._max_vertices, self._log_budget, self._max_log_chunks = max_vertices, log_budget, max_log_chunks
        self._log_order: deque = deque()  # (vertex, seq) of kept chunks, oldest first (stale ones skipped)
        self._log_seq = 0
        self._kept_bytes = 0
        self._kept_chunks = 0
        self._capped: set[str] = set()  # caps already noted

    def _vertex(self, digest: str, events: list) -> VertexState | None:
        """The vertex for ``digest``; None (and a note, once) past MAX_VERTICES new ones."""
        vertex = self.vertices.get(digest)
        if vertex is None:
            if len(self.vertices) >= self._max_vertices:
                self._note_cap("vertices", f"more than {self._max_vertices} steps reported: the rest are not kept",
                               events)
                return None
            vertex = self.vertices[digest] = VertexState(digest, len(self.vertices) + 1)
        return vertex

    def _note_cap(self, cap: str, text: str, events: list, vertex: VertexState | None = None) -> None:
        """Say once per cap what was dropped: a warning on ``vertex``, or on a finished note vertex of its own."""
        if cap in self._capped:
            return
        self._capped.add(cap)
        if vertex is None:
            vertex = self.vertices.get(CAPPED_DIGEST)
            if vertex is None:
                vertex = self.vertices[CAPPED_DIGEST] = VertexState(CAPPED_DIGEST, len(self.vertices) + 1,
                                                                    name="[envd] progress capped")
                vertex.started = vertex.completed = time.time()
                self.source_digests = self.source_digests | {CAPPED_DIGEST}
        vertex.warnings.append(text)
        events.append(VertexEvent("warning", vertex, warning=text))

    def apply(self, response) -> list[VertexEvent]:
        """Merge one StatusResponse; return what changed, in BuildKit's order."""
        events: list[VertexEvent] = []
        finished: list[VertexEvent] = []  # completion last, after this response's statuses and logs
        for msg in response.vertexes:
            for event in self._merge_vertex(msg, events):
                (events if event.kind == "started" else finished).append(event)
        for msg in response.statuses:
            vertex = self._vertex(msg.vertex, events)
            if vertex is None:
                continue
            status = vertex.statuses.get(msg.ID)
            if status is None:
                if len(vertex.statuses) >= MAX_STATUSES:
                    self._note_cap(f"statuses:{vertex.digest}", f"more than {MAX_STATUSES} progress counters: "
                                   "the rest are not kept", events, vertex)
                    continue
                status = vertex.statuses[msg.ID] = StatusState(msg.ID)
            status.name, status.current, status.total = self.mask.text(msg.name), msg.current, msg.total
            status.timestamp = _ts(msg, "timestamp")
            status.started = _ts(msg, "started")
            status.completed = _ts(msg, "completed")
            events.append(VertexEvent("status", vertex, status=status))
        for msg in response.warnings:
            vertex = self._vertex(msg.vertex, events)
            if vertex is None:
                continue
            if len(vertex.warnings) >= MAX_WARNINGS:
                self._note_cap(f"warnings:{vertex.digest}", f"more than {MAX_WARNINGS} warnings: the rest are not "
                               "kept", events, vertex)
                continue
            text = self.mask.text(msg.short.decode("utf-8", "replace"))
            vertex.warnings.append(text)
            events.append(VertexEvent("warning", vertex, warning=text))
        for msg in response.logs:
            vertex = self._vertex(msg.vertex, events)
            if vertex is None or not msg.msg:
                continue
            data = self._masked(vertex, msg.stream, bytes(msg.msg))
            if data:
                chunk = LogChunk(msg.stream, _ts(msg, "timestamp") or 0.0, data)
                self._keep_log(vertex, chunk, events)
                events.append(VertexEvent("log", vertex, log=chunk))
        if self._held:
            self._release_held(events)
        return events + finished

    def _masked(self, vertex: VertexState, stream: int, data: bytes) -> bytes:
        """``data`` with secrets masked, less an end that may begin one: kept for the stream's next chunk
        (a value split over two chunks is masked whole), released when the step is done."""
        if not self.mask:
            return data
        key = (vertex.digest, stream)
        data = self.mask.bytes(self._held.pop(key, b"") + data)
        held = self.mask.held(data)
        if held:
            self._held[key] = data[-held:]
            data = data[:-held]
        return data

    def _release_held(self, events: list) -> None:
        for (digest, stream), data in list(self._held.items()):
            vertex = self.vertices.get(digest)
            if vertex is not None and vertex.done:
                del self._held[(digest, stream)]
                chunk = LogChunk(stream, time.time(), data)
                self._keep_log(vertex, chunk, events)
                events.append(VertexEvent("log", vertex, log=chunk))

    def _merge_vertex(self, msg, events: list) -> Iterable[VertexEvent]:
        vertex = self._vertex(msg.digest, events)
        if vertex is None:
            return
        was_started, was_done = vertex.started is not None, vertex.done
        vertex.name = msg.name or vertex.name
        vertex.inputs = tuple(msg.inputs) or vertex.inputs
        vertex.cached = vertex.cached or msg.cached
        vertex.started = _ts(msg, "started") or vertex.started
        vertex.completed = _ts(msg, "completed") or vertex.completed
        vertex.error = self.mask.text(msg.error) or vertex.error
        if (not vertex.cached and not vertex.error and self.began is not None and vertex.completed is not None
                and vertex.completed < self.began):
            vertex.cached = True
        if vertex.started is not None and not was_started:
            yield VertexEvent("started", vertex)
        if vertex.done and not was_done:
            kind = "error" if vertex.error else "cached" if vertex.cached else "completed"
            yield VertexEvent(kind, vertex)

    def _keep_log(self, vertex: VertexState, chunk: LogChunk, events: list) -> None:
        """Keep the tail: per vertex up to ``log_cap`` bytes, over the build LOG_BUDGET / MAX_LOG_CHUNKS."""
        self._log_seq += 1
        chunk.seq = self._log_seq
        vertex.logs.append(chunk)
        vertex.log_bytes += len(chunk.data)
        self._kept_bytes += len(chunk.data)
        self._kept_chunks += 1
        self._log_order.append((vertex, chunk.seq))
        while vertex.log_bytes > self._log_cap and len(vertex.logs) > 1:
            self._drop_oldest_log(vertex)
        while (self._kept_bytes > self._log_budget or self._kept_chunks > self._max_log_chunks) and self._log_order:
            oldest, seq = self._log_order.popleft()
            if oldest.logs and oldest.logs[0].seq == seq and len(oldest.logs) > (oldest is vertex):
                self._drop_oldest_log(oldest)
                self._note_cap("logs", f"more than {self._log_budget >> 20} MiB or {self._max_log_chunks} messages "
                               "of logs: the oldest are dropped", events)
        if len(self._log_order) > 2 * self._kept_chunks + 1024:  # forget entries of chunks dropped per vertex
            self._log_order = deque(entry for entry in self._log_order
                                    if entry[0].logs and entry[1] >= entry[0].logs[0].seq)

    def _drop_oldest_log(self, vertex: VertexState) -> None:
        dropped = vertex.logs.popleft()
        vertex.log_bytes -= len(dropped.data)
        vertex.dropped_log_bytes += len(dropped.data)
        self._kept_bytes -= len(dropped.data)
        self._kept_chunks -= 1

    # Summaries used by SolveResult, errors, benchmarks and views.
    @property
    def total(self) -> int:
        return len(self.vertices)

    def _operations(self) -> list[VertexState]:
        """Every vertex but the sources, which are re-resolved on each solve rather than run or cached."""
        return [v for v in tuple(self.vertices.values()) if v.digest not in self.source_digests]

    def ran(self) -> list[VertexState]:
        """Operations that executed (or are executing): started and not served from cache."""
        return [v for v in self._operations() if v.started is not None and not v.cached]

    def cached(self) -> list[VertexState]:
        """Operations served from the daemon's cache."""
        return [v for v in self._operations() if v.cached]

    @property
    def fully_cached(self) -> bool:
        """True when every operation vertex came from cache."""
        ops = self._operations()
        return bool(ops) and all(v.cached for v in ops)

    def failed(self) -> list[VertexState]:
        return [v for v in tuple(self.vertices.values()) if v.error]

    def to_dict(self) -> dict:
        """JSON data for views and history; safe to call from another thread while the solve runs.

        ``done``: every vertex seen so far has finished (the daemon may still report more).
        """
        vertices = tuple(self.vertices.values())
        return {"version": EVENT_SCHEMA_VERSION, "vertices": [v.to_dict() for v in vertices],
                "total": len(vertices), "cached": len(self.cached()), "ran": len(self.ran()),
                "failed": len(self.failed()), "done": bool(vertices) and all(v.done for v in vertices)}
