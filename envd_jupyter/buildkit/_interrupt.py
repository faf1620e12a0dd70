"""Waiting on the daemon so that Ctrl-C always cancels the solve and returns control.

Python raises KeyboardInterrupt wherever the main thread is when it next handles signals. Inside a
finalizer the garbage collector runs there (``__del__``, a weakref callback) Python prints "Exception
ignored" and drops it, so the solve sleeps on; inside library code that has just taken a lock (as
``Condition.__enter__`` does before returning) the lock stays held. So, in the main thread and while
Python's own SIGINT handler is in place, ``deferred_interrupts`` swaps in a handler that only records
Ctrl-C, and ``wait`` turns it into cancel-then-KeyboardInterrupt at a point of our choosing. The
waiting thread blocks only on a ``Flag``, set from grpc's callbacks: ``threading.Event`` waits under
a shared Condition that the same exception could leave held.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time
from typing import Callable

SLICE = 0.1  # seconds between checks while waiting (interrupts, ``check``)
CANCEL_CONFIRM = 1.0  # how long Ctrl-C waits for the daemon to confirm a cancel before returning control


class Flag:
    """A one-shot event whose ``set`` and ``wait`` share no lock: each waiter sleeps on its own."""

    def __init__(self) -> None:
        self._set = False
        self._sleepers: list = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        while self._sleepers:
            try:
                self._sleepers.pop().release()
            except (IndexError, RuntimeError):  # another set() took it first
                pass

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when ``timeout`` seconds passed first."""
        if self._set:
            return True
        sleeper = _thread.allocate_lock()
        sleeper.acquire()
        self._sleepers.append(sleeper)
        if not self._set:  # a set() after the append releases the sleeper; one before it is seen here
            sleeper.acquire(True, -1 if timeout is None else max(timeout, 0.0))
        try:
            self._sleepers.remove(sleeper)
        except ValueError:
            pass
        return self._set


class _Recorder:
    """The SIGINT handler while the library waits: notes the interrupt, never raises in others' code."""

    def __init__(self) -> None:
        self.pending = False

    def __call__(self, signum, frame) -> None:
        self.pending = True

    def take(self) -> bool:
        """Whether an interrupt is pending; it is handled by whoever asked."""
        pending, self.pending = self.pending, False
        return pending


_RECORDER = _Recorder()


class deferred_interrupts:
    """Within the block, Ctrl-C is recorded instead of raised wherever the main thread happens to be.

    ``wait`` raises it (after cancelling); one recorded elsewhere in the block is raised on leaving it.
    A no-op outside the main thread, when another handler than Python's own is installed (the
    caller chose what Ctrl-C does), and inside an enclosing block.
    """

    def __enter__(self) -> "deferred_interrupts":
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            _RECORDER.pending = False
            self._previous = signal.signal(signal.SIGINT, _RECORDER)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._previous is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        if _RECORDER.take() and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt


def take_interrupt() -> bool:
    """In the main thread inside ``deferred_interrupts``: whether Ctrl-C was pressed (consumed by the caller)."""
    recording = threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGINT) is _RECORDER  # other threads never see Ctrl-C, and must not take the main one's
    return recording and _RECORDER.take()


def wait(flag: Flag, timeout: float | None = None, *, on_interrupt: Callable[[], None],
         check: Callable[[], None] | None = None) -> bool:
    """Wait for ``flag`` (``timeout`` None: no bound); False when the timeout passed first.

    ``check`` runs between slices and may raise to end the wait. On Ctrl-C (or KeyboardInterrupt):
    ``on_interrupt()`` cancels, the flag gets up to CANCEL_CONFIRM seconds, then KeyboardInterrupt.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with deferred_interrupts():
        try:
            while True:
                remaining = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
                if flag.wait(remaining):
                    return True
                if take_interrupt():
                    raise KeyboardInterrupt
                if check is not None:
                    check()
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        except KeyboardInterrupt:
            on_interrupt()
            flag.wait(CANCEL_CONFIRM)
            raise
