"""EventCoalescer: VertexEvents handed to a slow consumer (a widget, a server push) in batches.

A solve can send thousands of log events a second; a view redrawn per event falls behind and
holds up the Status thread that feeds it. The coalescer is itself an EventCallback: the producer
only appends, and the coalescer's timer thread hands the consumer one batch at a time, at most
``max_per_second`` times per second. A batch is delivered as soon as the rate allows, never held
back until the next event arrives; ``close()`` delivers whatever is left.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from typing import Callable

from envd_jupyter.buildkit._progress import LogChunk, VertexEvent

BatchCallback = Callable[[list[VertexEvent]], None]


class EventCoalescer:
    """Batches VertexEvents for ``on_batch``, at most ``max_per_second`` deliveries per second.

    ``collapse_logs``: consecutive log events of one vertex and stream in a batch become one event
    whose chunk holds all their bytes, in order (it keeps the first chunk's timestamp), so a noisy
    step costs the consumer one event per batch. ``clock``: seconds, monotonic (tests inject one).
    ``timer=False`` starts no thread: the caller delivers by calling ``flush_due()`` from its own
    loop. The consumer runs on the timer thread (or the caller of flush_due/close), one batch at a
    time; if it raises, the producer's next event and ``close()`` raise that error. Events that
    arrive after ``close()`` are delivered at once, one per batch. Use it as a context manager, or
    close it: events still waiting are delivered only then.
    """

    def __init__(self, on_batch: BatchCallback, *, max_per_second: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, collapse_logs: bool = True, timer: bool = True):
        if not max_per_second > 0:
            raise ValueError(f"max_per_second must be positive, not {max_per_second!r}")
        self._on_batch = on_batch
        self._interval = 1.0 / max_per_second
        self._clock = clock
        self._collapse_logs = collapse_logs
        self._lock = threading.Lock()  # guards the waiting events and flags; never held while the consumer runs
        self._wake = threading.Condition(self._lock)
        self._delivering = threading.Lock()  # one batch at a time, in order; taken before _lock
        self._pending: list[VertexEvent] = []
        self._log_parts: list[bytes] = []  # the last pending event's chunks while it collapses logs
        self._next_delivery = -math.inf
        self._closed = False
        self._failure: Exception | None = None
        self._thread = None
        if timer:
            self._thread = threading.Thread(target=self._run, name="envd-event-coalescer", daemon=True)
            self._thread.start()

    def __call__(self, event: VertexEvent) -> None:
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if not self._closed:
                if not self._pending:
                    self._wake.notify()
                self._append(event)
                return
        with self._delivering:
            self._deliver([event])

    def flush_due(self) -> bool:
        """Deliver the waiting batch if the rate allows it now; True when a batch was delivered."""
        with self._delivering:
            with self._lock:
                now = self._clock()
                if not self._pending or now < self._next_delivery:
                    return False
                self._next_delivery = now + self._interval
                batch = self._take()
            self._deliver(batch)
            return True

    def close(self) -> None:
        """Stop the timer and deliver everything still waiting, now, on the calling thread."""
        try:
            with self._delivering:
                with self._lock:
                    self._closed = True
                    self._wake.notify()
                    batch = [] if self._failure is not None else self._take()
                if batch:
                    self._deliver(batch)
        finally:
            if self._thread is not None:
                self._thread.join()
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> EventCoalescer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _deliver(self, batch: list[VertexEvent]) -> None:
        """Run the consumer (with _delivering held); a failure is kept for the producer and close()."""
        try:
            self._on_batch(batch)
        except Exception as exc:
            with self._lock:
                self._failure = exc
            raise

    def _append(self, event: VertexEvent) -> None:
        if self._log_parts and event.kind == "log":
            last = self._pending[-1]
            if last.vertex is event.vertex and last.log.stream == event.log.stream:
                self._log_parts.append(event.log.data)
                return
        self._seal_collapsed()
        self._pending.append(event)
        self._log_parts = [event.log.data] if self._collapse_logs and event.kind == "log" else []

    def _seal_collapsed(self) -> None:
        """The last pending event gets the bytes of every log event collapsed into it."""
        if len(self._log_parts) > 1:
            first = self._pending[-1].log
            self._pending[-1] = replace(self._pending[-1],
                                        log=LogChunk(first.stream, first.timestamp, b"".join(self._log_parts)))
        self._log_parts = []

    def _take(self) -> list[VertexEvent]:
        self._seal_collapsed()
        batch, self._pending = self._pending, []
        return batch

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._due():
                    # Bounded: an injected clock may reach the due time without anyone notifying.
                    self._wake.wait(min(self._interval, self._next_delivery - self._clock())
                                    if self._pending else None)
                if self._closed:
                    return
            try:
                self.flush_due()
            except Exception:  # the consumer broke: kept for the producer's next event and close()
                return

    def _due(self) -> bool:
        return bool(self._pending) and self._clock() >= self._next_delivery
