"""A solve running in its own thread: watch it, cancel it, wait for it, from any thread or from asyncio."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Iterator

from envd_jupyter.buildkit._interrupt import SLICE, Flag, deferred_interrupts, take_interrupt, wait
from envd_jupyter.buildkit._lifecycle import END_OF_EVENTS, SolveLifecycle, SolveResult
from envd_jupyter.buildkit._progress import BuildModel, VertexEvent

ASYNC_CANCEL_WAIT = 5.0  # how long a cancelled awaiting task waits for the daemon to end the solve
_LOG = logging.getLogger(__name__)


class SolveHandle:
    """What ``Client.start_solve`` returns: the solve runs in a thread of its own from the start.

    ``model`` is live; ``events()`` iterates VertexEvents from the call to the end; ``cancel()`` ends
    the solve on the daemon; ``result()`` waits (Ctrl-C while waiting cancels, then re-raises);
    ``await handle`` does the same in asyncio, where cancelling the awaiting task cancels the solve.
    """

    def __init__(self, lifecycle: SolveLifecycle, work: Callable[[], SolveResult]):
        self._lifecycle = lifecycle
        self._finished = Flag()
        self._result: SolveResult | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[SolveHandle], Any]] = []
        threading.Thread(target=self._run, args=(work,), name=f"envd-solve-{lifecycle.ref[:8]}", daemon=True).start()

    def __repr__(self) -> str:
        return f"<SolveHandle {self.ref} {'done' if self.done else 'running'}>"

    def _run(self, work: Callable[[], SolveResult]) -> None:
        try:
            self._result = work()
        except BaseException as exc:  # handed to whoever waits
            self._error = exc
        finally:
            self._finished.set()
            while self._callbacks:
                try:
                    callback = self._callbacks.pop(0)
                except IndexError:  # add_done_callback took it back to call it itself
                    break
                self._call(callback)

    def _call(self, callback: Callable[["SolveHandle"], Any]) -> None:
        try:
            callback(self)
        except Exception:
            _LOG.exception("done callback of %r raised", self)

    @property
    def ref(self) -> str:
        return self._lifecycle.ref

    @property
    def model(self) -> BuildModel:
        return self._lifecycle.model

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Cancel the solve on the daemon (the call is sent at once); ``result()`` then raises SolveCancelled."""
        self._lifecycle.cancel()

    def result(self, timeout: float | None = None) -> SolveResult:
        """The SolveResult, or the solve's error raised here; TimeoutError if still running after ``timeout``."""
        if not wait(self._finished, timeout, on_interrupt=self.cancel):
            raise TimeoutError(f"solve {self.ref} still running after {timeout}s")
        if self._error is not None:
            raise self._error
        return self._result

    def add_done_callback(self, callback: Callable[["SolveHandle"], Any]) -> None:
        """Call ``callback(handle)`` once the solve has ended: in the solve's thread, or now if it has."""
        self._callbacks.append(callback)
        if self._finished.is_set():
            try:
                self._callbacks.remove(callback)
            except ValueError:
                return  # the solve's thread took it and calls it
            self._call(callback)

    def events(self, timeout: float | None = None) -> Iterator[VertexEvent]:
        """VertexEvents from now until the solve ends; TimeoutError if it has not ended after ``timeout``.

        Ctrl-C while waiting for the next event cancels the solve.
        """
        events = self._lifecycle.subscribe()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                with deferred_interrupts():
                    event = self._next(events, deadline)
                if event is END_OF_EVENTS:
                    return
                yield event
        finally:
            self._lifecycle.unsubscribe(events)

    def _next(self, events: queue.SimpleQueue, deadline: float | None):
        while True:
            try:
                return events.get(timeout=SLICE)
            except queue.Empty:
                pass
            if take_interrupt():
                self.cancel()
                raise KeyboardInterrupt
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"solve {self.ref} still running")

    def __await__(self):
        return self._wait_async().__await__()

    async def _wait_async(self) -> SolveResult:
        import asyncio

        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def wake(_handle) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        self.add_done_callback(wake)
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            self.cancel()
            await asyncio.wait({finished}, timeout=ASYNC_CANCEL_WAIT)  # the solve's thread ends once the daemon confirms
            raise
        return self.result(0)
