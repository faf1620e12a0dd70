"""Starlark evaluation that can never kill or hang the process that asked for it.

go.starlark.net runs inside the process that loads it, and the ``starlark-go`` binding exposes
neither ``Thread.SetMaxExecutionSteps`` nor ``Thread.Cancel``: a loop over ``range(1 << 62)``
runs to the end with the GIL released and a pending SIGINT waiting for it, and a Go runtime
failure (out of memory) ends the whole process. So every evaluation runs in a worker process
(``_starlark_worker``) that holds nothing but the interpreter. The Python functions a file calls
stay here: the worker forwards each call and waits for the answer, so all recorded state lives in
this process and there is one evaluation model, whatever the file does.

While it waits, this side watches the worker: ``EvalLimits`` bound its CPU time (what an endless
loop consumes whatever the machine's load), its memory, the wall-clock time (a guard against a
worker that stops without using CPU); the loader counts the calls into Python. A breach, a crash or a
KeyboardInterrupt (a kernel interrupt) kills the worker at once; an error in the file leaves it
alive for the next evaluation. Workers start in their own session, so an interrupt sent to the
kernel's process group reaches only us.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import starlark_go

from envd_jupyter.lang._errors import EnvdError, Location

_WORKER = Path(__file__).with_name("_starlark_worker.py")
_POLL_SECONDS = 0.05  # how often a waiting evaluation looks at the worker: the interrupt latency bound
_MAX_IDLE = 2
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class EvalLimits:
    """Budgets of one evaluation (a file with its loads, or a cell). A real build file needs
    milliseconds, a few MB and tens of calls; the defaults are orders of magnitude above that."""

    cpu_seconds: float = 10.0  # CPU time of the interpreter: stops endless loops deterministically
    wall_seconds: float = 120.0  # a guard only: a worker that neither finishes nor uses CPU
    memory_bytes: int = 1 << 30  # the interpreter's data segment (RLIMIT_DATA)
    calls: int = 10_000  # calls into Python (envd rules, chain methods): a loop around run() ends here
    source_bytes: int = 1 << 20  # size of one build file or cell


DEFAULT_LIMITS = EvalLimits()


class EvalLimitError(EnvdError):
    """An evaluation went past one of its ``EvalLimits``, or the interpreter process died."""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` from /proc (None where there is no /proc: the wall clock counts)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _data_bytes(pid: int) -> int:
    """The data segment RLIMIT_DATA counts (VmData), 0 where /proc cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _Worker:
    """One worker process, its two pipes and its memory limit (fixed for its life)."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        self.log = tempfile.TemporaryFile()  # stderr: Go's "fatal error: ..." when the runtime dies
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(_WORKER), str(child_read), str(child_write), str(memory_bytes)],
                pass_fds=(child_read, child_write), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                start_new_session=True)
        finally:
            os.close(child_read)
            os.close(child_write)
        self.killed = False
        self.requests = Connection(parent_write, readable=False)
        self.replies = Connection(parent_read, writable=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu(self) -> float:
        used = _cpu_seconds(self.process.pid)
        return time.monotonic() if used is None else used

    def crash_reason(self) -> str:
        """What the worker said when it died: Go's fatal error or signal line, else its last line or exit status."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.seek(0)
        lines = [line for line in self.log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        fatal = next((line for line in lines if line.startswith(("fatal error:", "SIG"))), "")
        return fatal or (lines[-1] if lines else f"exit status {self.process.returncode}")

    def kill(self) -> None:
        self.killed = True
        self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # unkillable only in a stuck kernel; do not hang on it
            pass
        for handle in (self.requests, self.replies, self.log):
            handle.close()


class _Pool:
    """Idle workers, reused across evaluations (starting one costs a Python start and the Go runtime)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []

    def take(self, memory_bytes: int) -> _Worker:
        with self._lock:
            for worker in list(self._idle):
                self._idle.remove(worker)
                if worker.alive() and worker.memory_bytes == memory_bytes:
                    return worker
                worker.kill()
        return _Worker(memory_bytes)

    def give_back(self, worker: _Worker) -> None:
        """Keep ``worker`` for the next evaluation, unless it died, or kept so much memory mapped (Go does not
        unmap its heap) that the next evaluation would not get the limit it asks for."""
        grown = _data_bytes(worker.process.pid) > worker.memory_bytes // 2
        with self._lock:
            if worker.alive() and not worker.killed and not grown and len(self._idle) < _MAX_IDLE:
                self._idle.append(worker)
                return
        worker.kill()

    def forget(self) -> None:
        """In a forked child: the workers (and their pipes) belong to the parent."""
        self._idle = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


_POOL = _Pool()
atexit.register(_POOL.close)
os.register_at_fork(after_in_child=_POOL.forget)


class Interpreter:
    """A Starlark interpreter in a worker; ``exec``/``eval``/``globals`` as ``starlark_go.Starlark`` has them.

    Errors in the file arrive as the same ``starlark_go`` exceptions; calls of ``functions`` run here.
    """

    def __init__(self, worker: _Worker, functions: Mapping[str, Callable[..., Any]], limits: EvalLimits):
        self._worker, self._functions, self._limits = worker, functions, limits
        self._cpu_start, self._wall_start = worker.cpu(), time.monotonic()  # (again once the worker is ready)
        self._next_check = self._wall_start + _POLL_SECONDS
        self._prints = 0
        self._filename = "<starlark>"

    def open(self, values: Mapping[str, Any]) -> None:
        """A fresh interpreter in the worker; the budget counts from here (a new worker's start is not the file's)."""
        self._request(("open", sorted(self._functions), dict(values)), "<starlark>")
        self._cpu_start, self._wall_start = self._worker.cpu(), time.monotonic()

    def exec(self, source: str, *, filename: str) -> None:
        self._filename = filename
        self._request(("exec", source, filename), filename)

    def eval(self, expr: str, *, filename: str) -> Any:
        self._filename = filename
        return self._request(("eval", expr, filename), filename)

    def globals(self) -> list[str]:
        return self._request(("globals",), self._filename)  # a crash here is the last file's doing

    def _request(self, message: tuple, filename: str) -> Any:
        self._send(message, filename)
        while True:
            kind, *payload = self._receive(filename)
            if kind == "ok":
                return payload[0]
            if kind == "error":
                raise payload[0]
            if kind == "failed":
                raise starlark_go.StarlarkError(payload[0])
            if kind == "print":
                self._print(payload[0], filename)
            elif kind == "call":
                self._send(self._call(*payload), filename)

    def _print(self, text: str, filename: str) -> None:
        self._prints += 1
        if self._prints > self._limits.calls:
            self._stop(f"stopped after {self._limits.calls} print() calls (the limit for calls)", filename)
        print(text, flush=True)

    def _call(self, name: str, args: tuple, kwargs: dict) -> tuple[str, Any]:
        try:
            return "return", self._functions[name](*args, **kwargs)
        except Exception as err:  # the caller keeps the typed error; Starlark needs only its text
            return "raise", str(err)

    def _send(self, message: tuple, filename: str) -> None:
        try:
            self._worker.requests.send(message)
        except OSError:
            raise self._gone(filename) from None

    def _receive(self, filename: str) -> tuple:
        """The worker's next message; meanwhile (and between messages) its budget is checked."""
        while True:
            ready = self._worker.replies.poll(_POLL_SECONDS)
            if not ready and not self._worker.alive():
                raise self._gone(filename)
            if time.monotonic() >= self._next_check:
                self._check_budget(filename)
            if ready:
                try:
                    return self._worker.replies.recv()
                except EOFError:
                    raise self._gone(filename) from None

    def _check_budget(self, filename: str) -> None:
        now = time.monotonic()
        self._next_check = now + _POLL_SECONDS
        limits = self._limits
        if self._worker.cpu() - self._cpu_start > limits.cpu_seconds:
            self._stop(f"stopped after {limits.cpu_seconds:g} s of CPU time (the limit; an endless loop?)", filename)
        if now - self._wall_start > limits.wall_seconds:
            self._stop(f"stopped after {limits.wall_seconds:g} s (the wall-clock limit)", filename)

    def _stop(self, reason: str, filename: str):
        self._worker.kill()
        raise EvalLimitError(reason, Location(filename))

    def _gone(self, filename: str) -> EvalLimitError:
        reason = self._worker.crash_reason()
        if "out of memory" in reason or "cannot allocate memory" in reason:
            text = f"ran out of memory (the limit is {self._limits.memory_bytes >> 20} MiB)"
        else:
            text = f"the Starlark interpreter stopped: {reason}"
        self._worker.kill()
        return EvalLimitError(text, Location(filename))


@contextmanager
def interpreter(functions: Mapping[str, Callable[..., Any]], values: Mapping[str, Any],
                limits: EvalLimits | None = None) -> Iterator[Interpreter]:
    """A fresh interpreter with ``functions`` (called here) and plain ``values`` as globals.

    Leaving normally, or by an error in the file, keeps the worker for the next evaluation; any
    other way out (a limit, KeyboardInterrupt, a bug of ours mid-message) kills it.
    """
    limits = limits or DEFAULT_LIMITS
    worker = _POOL.take(limits.memory_bytes)
    starlark = Interpreter(worker, functions, limits)
    try:
        starlark.open(values)
        yield starlark
    except (EnvdError, starlark_go.StarlarkError):
        _POOL.give_back(worker)  # an error in the file: the worker answered and waits (unless killed)
        raise
    except BaseException:
        worker.kill()
        raise
    else:
        _POOL.give_back(worker)
